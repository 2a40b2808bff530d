// Package shapes measures shapes.
package shapes

import (
	"fmt"
	"math"
)

// Pi is the ratio of a circle's circumference to its diameter.
const Pi = math.Pi

const maxSides = 12

// Circle is a round shape.
type Circle struct {
	Radius float64
	label  string
}

// Area is the circle's area.
func (c *Circle) Area() float64 {
	return Pi * c.Radius * c.Radius
}

func describe(shapeName string, sides int) string {
	if sides > maxSides {
		return fmt.Sprintf("%s with many sides",
			shapeName)
	}
	total := sides * 2
	return fmt.Sprintf("%s: %d", shapeName, total)
}

// Describe says what a shape is.
func Describe(name string) string {
	return describe(name, 3)
}

func TestDescribe_Circle() {}
