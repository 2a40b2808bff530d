package com.example.shapes;

import java.util.ArrayList;
import java.util.List;

/** A polygon with named corners. */
public class Polygon<T> {
  private static final int MAX_CORNERS = 12;
  private static final List<String> defaultNames = new ArrayList<>();
  private final List<T> corners = new ArrayList<>();
  private int cornerCount;

  /** Makes an empty polygon. */
  public Polygon() {
    cornerCount = 0;
  }

  /** Adds a corner; returns whether it fit. */
  public boolean addCorner(T corner) {
    if (cornerCount >= MAX_CORNERS) {
      return false;
    }
    String message =
        "adding corner " + corner;
    corners.add(corner);
    cornerCount++;
    return !message.isEmpty();
  }

  @Override
  public String toString() {
    return corners.toString();
  }

  private void reset() {
    corners.clear();
  }

  enum Kind {
    CONVEX,
    CONCAVE
  }
}
