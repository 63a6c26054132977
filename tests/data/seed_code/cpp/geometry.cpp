#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace geometry {

struct Point {
    double x;
    double y;
};

struct Rect {
    double left;
    double top;
    double right;
    double bottom;
};

/// Euclidean distance between two points.
double distance(const Point& a, const Point& b) {
    double dx = a.x - b.x;
    double dy = a.y - b.y;
    return std::sqrt(dx * dx + dy * dy);
}

/// Limits `value` to the closed range [lo, hi].
double clamp(double value, double lo, double hi) {
    if (value < lo) {
        return lo;
    }
    if (value > hi) {
        return hi;
    }
    return value;
}

/// Area of a rectangle; zero when its corners are out of order.
double rect_area(const Rect& r) {
    double width = std::max(0.0, r.right - r.left);
    double height = std::max(0.0, r.bottom - r.top);
    return width * height;
}

/// True when two rectangles share some area (touching edges do not count).
bool rects_overlap(const Rect& a, const Rect& b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

/// The rectangle where `a` and `b` overlap, or an empty one at the origin.
Rect intersection(const Rect& a, const Rect& b) {
    if (!rects_overlap(a, b)) {
        return Rect{0.0, 0.0, 0.0, 0.0};
    }
    return Rect{std::max(a.left, b.left), std::max(a.top, b.top),
                std::min(a.right, b.right), std::min(a.bottom, b.bottom)};
}

/// Smallest axis-aligned rectangle holding every point; empty input gives a zero rectangle.
Rect bounding_box(const std::vector<Point>& points) {
    if (points.empty()) {
        return Rect{0.0, 0.0, 0.0, 0.0};
    }
    Rect box{points[0].x, points[0].y, points[0].x, points[0].y};
    for (const Point& p : points) {
        box.left = std::min(box.left, p.x);
        box.top = std::min(box.top, p.y);
        box.right = std::max(box.right, p.x);
        box.bottom = std::max(box.bottom, p.y);
    }
    return box;
}

/// Area of a simple polygon given its vertices in order (shoelace formula).
double polygon_area(const std::vector<Point>& vertices) {
    double twice = 0.0;
    std::size_t n = vertices.size();
    for (std::size_t i = 0; i < n; ++i) {
        const Point& a = vertices[i];
        const Point& b = vertices[(i + 1) % n];
        twice += a.x * b.y - b.x * a.y;
    }
    return std::fabs(twice) / 2.0;
}

/// Merges overlapping closed intervals and returns them sorted by start.
std::vector<std::pair<int, int>> merge_intervals(std::vector<std::pair<int, int>> intervals) {
    std::sort(intervals.begin(), intervals.end());
    std::vector<std::pair<int, int>> merged;
    for (const auto& iv : intervals) {
        if (!merged.empty() && iv.first <= merged.back().second) {
            merged.back().second = std::max(merged.back().second, iv.second);
        } else {
            merged.push_back(iv);
        }
    }
    return merged;
}

/// Index of the point closest to `target`, or -1 when there are none.
int nearest_point(const std::vector<Point>& points, const Point& target) {
    int best = -1;
    double best_distance = 0.0;
    for (std::size_t i = 0; i < points.size(); ++i) {
        double d = distance(points[i], target);
        if (best < 0 || d < best_distance) {
            best = static_cast<int>(i);
            best_distance = d;
        }
    }
    return best;
}

}  // namespace geometry
