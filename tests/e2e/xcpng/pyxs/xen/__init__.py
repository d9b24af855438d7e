# xen - the package of the test stand-in for xen.lowlevel.xs (see
# lowlevel/xs.py); nothing else of Xen's Python packages is here.
