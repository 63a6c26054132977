#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace text_utils {

/// Removes leading and trailing whitespace from `s`.
std::string trim(const std::string& s) {
    std::size_t begin = 0;
    while (begin < s.size() && std::isspace(static_cast<unsigned char>(s[begin]))) {
        ++begin;
    }
    std::size_t end = s.size();
    while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) {
        --end;
    }
    return s.substr(begin, end - begin);
}

/// Splits `s` on every occurrence of `sep`, keeping empty pieces.
std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> parts;
    std::string current;
    for (char c : s) {
        if (c == sep) {
            parts.push_back(current);
            current.clear();
        } else {
            current += c;
        }
    }
    parts.push_back(current);
    return parts;
}

/// Returns a lower-case copy of `s` (ASCII letters only).
std::string to_lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

/// Counts how often each whitespace-separated word occurs, ignoring case.
std::map<std::string, int> word_frequency(const std::string& text) {
    std::map<std::string, int> counts;
    std::istringstream in(text);
    std::string word;
    while (in >> word) {
        ++counts[to_lower(word)];
    }
    return counts;
}

/// True when `s` reads the same backwards, looking only at letters and digits.
bool is_palindrome(const std::string& s) {
    std::string cleaned;
    for (char c : s) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
            cleaned += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    std::size_t i = 0, j = cleaned.size();
    while (i + 1 < j) {
        if (cleaned[i] != cleaned[j - 1]) {
            return false;
        }
        ++i;
        --j;
    }
    return true;
}

/// Replaces every non-overlapping occurrence of `from` in `s` with `to`.
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    if (from.empty()) {
        return s;
    }
    std::size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
        s.replace(pos, from.size(), to);
        pos += to.size();
    }
    return s;
}

/// Compresses runs of the same character, e.g. "aaabcc" becomes "a3b1c2".
std::string run_length_encode(const std::string& s) {
    std::string out;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = i;
        while (j < s.size() && s[j] == s[i]) {
            ++j;
        }
        out += s[i];
        out += std::to_string(j - i);
        i = j;
    }
    return out;
}

/// Joins `parts` with `sep` between consecutive elements.
std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) {
            out += sep;
        }
        out += parts[i];
    }
    return out;
}

/// Shortens `s` to at most `width` characters, ending with "..." when cut.
std::string truncate(const std::string& s, std::size_t width) {
    if (s.size() <= width) {
        return s;
    }
    if (width <= 3) {
        return s.substr(0, width);
    }
    return s.substr(0, width - 3) + "...";
}

}  // namespace text_utils
