"""The hybrid quantum generator: ansätze, PennyLane devices from config, the training plug-in."""
