from os import *
import os, sys


class file_cache:
    """Bad class name."""

    def readText(self, Name):
        """Bad method and parameter."""
        localValue = 1
        return localValue  
  
	
def undocumented():
    x = 'this line is much too long for pep 8 which wants seventy-nine columns at most'
    return x


def indented():
  """Two spaces."""
  return 1


moduleValue = 1


def camelFunc():
    """Bad function name."""
	return 1


class Config:
    """Bad attribute name."""

    someAttr = 1
