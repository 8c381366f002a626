"""qcalo: classical and quantum GANs for fast calorimeter shower simulation."""

__version__ = "0.2.0"
