package com.example.shapes;

import java.util.*;

/** A polygon. */
public class polygon_shape<t> {
  private static final int maxCorners = 12;
  private static final List<String> Default_names = null;
  private int corner_count;

  public void AddCorner(int Corner) {
    int local_value = Corner;
     corner_count = local_value; 
  }

  private String describe() {
    return "a polygon whose description is far too long to fit in the one hundred columns of the guide";
  }

  enum Kind {
    convex
  }
}
