# frozen_string_literal: true

require 'json'

# Shapes and the areas they cover.
module Shapes
  UNIT = 'cm'
  Point = Struct.new(:x, :y)

  # A rectangle on a grid.
  class Rectangle
    attr_reader :width, :height

    def initialize(width, height = 1)
      @width = width
      @height = height
    end

    def area(scale: 1)
      width * height * scale
    end

    def square?
      width == height
    end

    def to_json(*args)
      { width: width, height: height, label: "#{width}x#{height}\n" }.to_json(*args)
    end

    private

    def debug_label
      total_area = area
      "area #{total_area} #{UNIT}"
    end
  end
end
