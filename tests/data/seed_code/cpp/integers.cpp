#include <cstdint>
#include <vector>

namespace integers {

/// Greatest common divisor of two non-negative integers (Euclid's algorithm).
long long gcd(long long a, long long b) {
    while (b != 0) {
        long long r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/// Sum of the decimal digits of `n`, ignoring its sign.
int digit_sum(long long n) {
    if (n < 0) {
        n = -n;
    }
    int total = 0;
    while (n > 0) {
        total += static_cast<int>(n % 10);
        n /= 10;
    }
    return total;
}

/// True when `n` is a prime number.
bool is_prime(int n) {
    if (n < 2) {
        return false;
    }
    for (int d = 2; d * d <= n; ++d) {
        if (n % d == 0) {
            return false;
        }
    }
    return true;
}

/// How many elements of `values` are strictly greater than `threshold`.
int count_above(const std::vector<int>& values, int threshold) {
    int count = 0;
    for (int v : values) {
        if (v > threshold) {
            ++count;
        }
    }
    return count;
}

/// The running totals of `values`: element i is the sum of the first i + 1 values.
std::vector<long long> prefix_sums(const std::vector<int>& values) {
    std::vector<long long> sums;
    long long total = 0;
    for (int v : values) {
        total += v;
        sums.push_back(total);
    }
    return sums;
}

}  // namespace integers
