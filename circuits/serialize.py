"""LayeredNetwork to and from plain data (a JSON-able dict plus named arrays), for checkpoints and export."""
from __future__ import annotations

import numpy as np

from .devices import Amplifier, DiodeClamp
from .errors import NetworkError
from .network import LayeredNetwork


def clamp_to_dict(clamp: DiodeClamp | None):
    return None if clamp is None else clamp.to_data()


def clamp_from_dict(spec):
    return None if spec is None else DiodeClamp.from_data(spec)


def network_to_data(net: LayeredNetwork) -> tuple:
    """(meta dict, arrays dict) describing the network completely."""
    meta = {"sizes": list(net.sizes), "gains": list(net.gains), "bias_voltage": net.bias_voltage,
            "input_pairs": net.input_pairs, "readout": net.readout, "hidden_pairs": net.hidden_pairs,
            "neurons": [clamp_to_dict(c) for c in net.neurons]}
    if not net.amplifier.ideal:  # ideal amplifiers are the default: saved networks from before models read the same
        meta["amplifier"] = net.amplifier.to_data()
    arrays = {f"weights_{c}": w for c, w in enumerate(net.weights)}
    arrays.update({f"biases_{c}": b for c, b in enumerate(net.biases)})
    return meta, arrays


def network_from_data(meta: dict, arrays) -> LayeredNetwork:
    L = len(meta["sizes"]) - 1
    try:
        weights = [np.array(arrays[f"weights_{c}"]) for c in range(L)]
        biases = [np.array(arrays[f"biases_{c}"]) for c in range(L)]
    except KeyError as e:
        raise NetworkError(f"saved network lacks array {e}") from None
    return LayeredNetwork(meta["sizes"], weights, biases, [clamp_from_dict(c) for c in meta["neurons"]],
                          meta["gains"], meta["bias_voltage"], meta["input_pairs"], meta["readout"],
                          bool(meta.get("hidden_pairs", False)),  # runs saved before differential layers
                          Amplifier.from_data(meta.get("amplifier")))
