#include <string>

#define maxSize 10

using namespace std;

namespace Shapes {

const int MAX_CORNERS = 12;

enum class Kind { convex };

struct Point {
  int xValue;
};

class polygon {
 public:
  int cornerCount() { return count; } 

 private:
  int count;
};

int total_corners(int PolygonCount) {
    int totalValue = PolygonCount;
  return totalValue + 1000000000 + 1000000000 + 1000000000 + 1000000000 + 1000000;
}

}  // namespace Shapes
