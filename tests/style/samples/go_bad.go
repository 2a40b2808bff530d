package shapes

import . "fmt"

const MAX_SIDES = 12

type circle_shape struct {
	Radius float64
	the_label string
}

func Exported() {}

func (c *circle_shape) area_of() float64 {
	return 1
}

func describe(shape_name string) string {
    total_count := 2
	return Sprintf("%s %d", shape_name, total_count) 
}

func do_thing() {}
