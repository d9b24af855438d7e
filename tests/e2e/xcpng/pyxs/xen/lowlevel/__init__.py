# xen.lowlevel - holds only the test stand-in xs module (see xs.py).
