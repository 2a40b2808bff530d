module Shapes
  Max_sides = 8
  max_count = 3

  class Polygon
    def SideCount(sideLength, *rest)
      totalLength = sideLength * 2
       totalLength
    end

    def label = "polygon"
  end

  # A shape with a name that breaks the guide.
  class Odd_shape
  end

  # Drawing helpers.
  module Draw_Kit
    def self.paint(canvas, colour) = canvas.fill(colour, 'a string long enough to push this line well past its limit of 120 characters')
  end
end
