"""qcalo's presets: configs/NAME.yaml, installed with the package (`qcalo.config.preset_path`).

`--generator NAME` loads NAME.yaml; a preset lists only what differs from the defaults beneath
it (the loop's in qcalo/config.py, the model's in its plug-in, or the preset it `extends`).
"""
