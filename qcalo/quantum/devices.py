"""PennyLane devices from the config: the one place that knows device names.

The user writes the device exactly as PennyLane names it (`device.name: default.qubit`,
`lightning.qubit`, `qiskit.aer`, `qiskit.remote`, or any installed device); qcalo adds only
what such a device needs from a config file: shots, an Aer noise model taken from a
`qiskit_ibm_runtime.fake_provider` fake backend, an IBM backend by name (or its fake twin).

IBM tokens never pass through configs, logs or checkpoints: `qiskit.remote` uses the account
saved with `QiskitRuntimeService.save_account(...)` or the `QISKIT_IBM_TOKEN` environment variable.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import pennylane as qml

from qcalo.errors import ConfigError
from qcalo.quantum.sweep import QiskitSweep, SweepNode

DEFAULTS: dict[str, Any] = {
    "device.name": "default.qubit",  # any PennyLane device name
    "device.diff_method": "auto",  # auto: backprop / adjoint / parameter-shift by device
    "device.shots": 0,  # 0: exact expectation values; N: sampled with N shots
    "device.noise_model": None,  # qiskit.aer: a fake backend's name (e.g. fake_torino)
    "device.backend": None,  # qiskit.remote: an IBM backend name (ibm_torino) or fake_* name
    "device.fake": False,  # qiskit.remote: run on the fake twin of device.backend
    "device.channel": None,  # qiskit.remote: QiskitRuntimeService channel (default: saved account)
    "device.instance": None,  # qiskit.remote: IBM Cloud instance (CRN or name)
    "device.execution": "auto",  # auto: 'sweep' on qiskit.aer / qiskit.remote, else 'qnode'
    "device.spsa_h": 0.1,  # diff_method spsa: the shift (radians) of each angle
}
SWEEP_DEVICES = ("qiskit.aer", "qiskit.remote")

AUTO_DIFF = {
    "default.qubit": "backprop",
    "lightning.qubit": "adjoint",
    "lightning.kokkos": "adjoint",
    "lightning.gpu": "adjoint",
}
TOKEN_HELP = (
    "set the QISKIT_IBM_TOKEN environment variable, or save an account once with "
    '`python -c "from qiskit_ibm_runtime import QiskitRuntimeService as S; '
    "S.save_account(token='...', set_as_default=True)\"`; to try the path without an account "
    "use --set device.fake=true"
)


@dataclass
class QuantumDevice:
    """A constructed device and how QNodes on it are differentiated and measured."""

    device: Any
    diff_method: str
    shots: int | None
    name: str
    wires: int = 0
    sweep: QiskitSweep | None = None  # batched Qiskit execution (qcalo.quantum.sweep)
    spsa_h: float = 0.1
    seed: int = 0

    @property
    def broadcasts(self) -> bool:
        """True if a batch of parameters runs as one broadcast circuit (default.qubit)."""
        return self.name == "default.qubit"

    @property
    def needs_projectors(self) -> bool:
        """Adjoint differentiation handles expectation values only, not probabilities."""
        return self.diff_method == "adjoint"

    def qnode(self, func):
        """A torch QNode; a batch runs as one broadcast circuit under backprop, else it is
        expanded into one circuit per event (parameter-shift cannot differentiate broadcasts).
        With batched Qiskit execution, a `SweepNode` that runs the batch and its shifts at once."""
        if self.sweep is not None:
            return SweepNode(func, self.sweep, self.wires, self.diff_method, self.spsa_h, self.seed)
        node = qml.QNode(func, self.device, interface="torch", diff_method=self.diff_method)
        if self.shots:
            node = qml.set_shots(node, shots=self.shots)
        return node if self.diff_method == "backprop" else qml.transforms.broadcast_expand(node)


def fake_backend(name: str):
    """A `qiskit_ibm_runtime.fake_provider` backend by name: 'fake_torino', 'FakeTorino', 'torino'."""
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    key = name.lower().removesuffix("v2").removeprefix("fake").removeprefix("_").removeprefix("ibm_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backends = {b.name.removeprefix("fake_"): b for b in FakeProviderForBackendV2().backends()}
    if key not in backends:
        raise ConfigError(
            f"no fake backend '{name}' in qiskit_ibm_runtime.fake_provider; known: "
            + ", ".join(sorted(f"fake_{k}" for k in backends))
        )
    return backends[key]


def ibm_backend(name: str, channel: str | None = None, instance: str | None = None):
    """A real IBM backend through QiskitRuntimeService (saved account or QISKIT_IBM_TOKEN)."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    token = os.environ.get("QISKIT_IBM_TOKEN")
    kwargs: dict[str, Any] = {"channel": channel, "instance": instance}
    if token:
        kwargs["token"] = token
        kwargs["channel"] = channel or "ibm_quantum_platform"
    try:
        service = QiskitRuntimeService(**{k: v for k, v in kwargs.items() if v is not None})
    except Exception as exc:  # noqa: BLE001 - no account, bad token, no network: one message
        # the exception text can quote the account; name only its type
        raise ConfigError(
            f"cannot open an IBM Quantum account for backend '{name}' ({type(exc).__name__}); {TOKEN_HELP}"
        ) from None
    try:
        return service.backend(name)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"IBM backend '{name}' is not available to this account ({exc})") from None


def make_device(config: dict[str, Any], wires: int, seed: int | None = None) -> QuantumDevice:
    """The PennyLane device of `config` with `wires` qubits, and its differentiation method."""
    name = config["device.name"]
    shots = int(config["device.shots"] or 0) or None
    execution = config["device.execution"]
    if execution == "auto":
        execution = "sweep" if name in SWEEP_DEVICES else "qnode"
    if execution not in ("sweep", "qnode"):
        raise ConfigError(f"device.execution '{execution}': expected auto, sweep or qnode")
    if execution == "sweep" and name not in SWEEP_DEVICES:
        raise ConfigError(f"device.execution 'sweep' runs on {' / '.join(SWEEP_DEVICES)}, not '{name}'")
    kwargs: dict[str, Any] = {}
    noise_backend = None
    if name == "qiskit.aer":
        if config["device.noise_model"]:
            noise_backend = fake_backend(config["device.noise_model"])
        if noise_backend is not None and execution == "qnode":
            # the sweep builds the noise of the qubits its circuit uses itself: the whole model of
            # a 133-qubit backend costs ~3 s to build, for nothing
            from qiskit_aer.noise import NoiseModel

            kwargs["noise_model"] = NoiseModel.from_backend(noise_backend)
        if not shots:  # exact: Aer's aer_simulator would still sample
            kwargs["method"] = "density_matrix" if config["device.noise_model"] else "statevector"
        if seed is not None:
            kwargs["seed_simulator"] = seed
    elif name == "qiskit.remote":
        backend = config["device.backend"]
        if not backend:
            raise ConfigError(
                "device qiskit.remote needs device.backend: an IBM backend name (e.g. ibm_torino) "
                "or a fake backend name (e.g. fake_torino)"
            )
        if config["device.fake"] or str(backend).lower().startswith("fake"):
            kwargs["backend"] = fake_backend(backend)
        else:
            kwargs["backend"] = ibm_backend(backend, config["device.channel"], config["device.instance"])
    elif config["device.noise_model"] or config["device.backend"]:
        raise ConfigError(
            f"device.noise_model / device.backend apply to qiskit.aer / qiskit.remote, not '{name}'"
        )
    elif seed is not None and name == "default.qubit":
        kwargs["seed"] = seed
    try:
        device = qml.device(name, wires=wires, **kwargs)
    except qml.exceptions.DeviceError as exc:
        raise ConfigError(f"device.name '{name}': {exc}") from None
    diff = config["device.diff_method"]
    if diff == "auto":
        diff = AUTO_DIFF.get(name, "parameter-shift")
        if diff == "backprop" and shots:
            diff = "parameter-shift"  # sampled results carry no backprop gradient
    sweep = None
    if execution == "sweep":
        remote = name == "qiskit.remote"
        sweep = QiskitSweep(device.backend, shots, seed, remote=remote, noise_backend=noise_backend)
    return QuantumDevice(device, diff, shots, name, wires, sweep, float(config["device.spsa_h"]), seed or 0)
