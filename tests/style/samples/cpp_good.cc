#include <string>
#include <vector>

#define SHAPES_MAX_CORNERS 12

namespace shapes {

const int kMaxCorners = 12;

enum class Kind { kConvex, kConcave };

struct Point {
  int x;
  int y;
};

class Polygon {
 public:
  explicit Polygon(int corner_count) : corner_count_(corner_count) {}

  int CornerCount() const { return corner_count_; }
  int corner_count() const { return corner_count_; }

  void AddCorner(const Point& point) {
    if (corner_count_ < kMaxCorners) {
      corners_.push_back(point);
    }
  }

 private:
  int corner_count_;
  std::vector<Point> corners_;
};

int TotalCorners(const std::vector<Polygon>& polygons) {
  int total = 0;
  for (const Polygon& polygon : polygons) {
    total += polygon.CornerCount();
  }
  return total;
}

}  // namespace shapes
