"""What the network is: a graph of roles and two-terminal devices, and its dense layered form.

``GraphNetwork`` holds any topology as a networkx graph (the description is data: roles on nodes,
devices on edges). ``LayeredNetwork`` is the Kendall et al. (2020) case that matters most, held as one
dense conductance matrix per pair of consecutive layers so batched solvers can use matrix products;
``LayeredNetwork.to_graph()`` gives the same circuit as a graph.

Conventions (SI units throughout):
- layer 0 holds the input voltage sources; with ``input_pairs`` feature k drives two sources at +x_k
  and -x_k so that positive conductances can realise signed weights;
- every free layer is tied to two bias sources at +bias_voltage and -bias_voltage;
- ``weights[c]`` (shape ``sizes[c] x sizes[c+1]``) joins layer c to layer c+1; ``gains[c]`` is the gain
  of the bidirectional amplifier that drives connection c from layer c (``gains[0]`` is 1: sources
  need no amplifier);
- with ``hidden_pairs`` every amplifier after the first connection is differential: it drives +a V and
  -a V, so ``weights[c]`` (c >= 1) has ``2 sizes[c]`` rows (the +a V rows first) and a hidden layer, like
  the input layer, feeds the next one signed weights G+ - G-. A single-ended layer passes its common mode
  on with gain a G_forward / S (about a / 2), which drives deep networks onto the rails; a differential
  one cancels it;
- ``neurons[c]`` is the nonlinearity on every node of layer c+1 (a DiodeClamp, or None for linear);
- outputs are node pairs read as V+ - V- (``readout='pairs'``) or single nodes (``readout='nodes'``).
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from . import kernels
from .devices import Amplifier, DiodeClamp, amplifier_model, diode_model
from .errors import InputError, NetworkError

ROLES = ("input", "bias", "hidden", "output")
SOURCE_ROLES = ("input", "bias")
READOUTS = ("pairs", "nodes")


def _check_inputs(x, n_features: int, what: str = "x", finite: bool = True) -> np.ndarray:
    try:
        x = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as e:  # strings, ragged rows, objects
        raise InputError(f"{what} must be an array of numbers, (batch, {n_features}) or ({n_features},): {e}") from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n_features:
        raise InputError(f"{what} must have shape (batch, {n_features}) or ({n_features},), got {np.shape(x)}")
    if not finite:  # the caller checks a product of x instead (NaN and inf always reach it)
        return x
    if not kernels.all_finite(x):  # one pass; locate the culprit only when something is off
        sample, col = np.argwhere(~np.isfinite(x))[0]
        raise InputError(f"{what} holds NaN/inf (first at sample {sample}, column {col}); clean the data first")
    return x


def _readout_matrix(readout: str, n_out_nodes: int) -> np.ndarray:
    """R such that the prediction is R @ V_out (pairs: V+ - V-, with + nodes first)."""
    if readout == "nodes":
        return np.eye(n_out_nodes)
    half = n_out_nodes // 2
    return np.hstack([np.eye(half), -np.eye(half)])


class Unchanged:
    """``unchanged()`` and ``derived()``, the same for both kinds of network: a block in which the conductances are
    not edited (the phases of one training step) is validated once on entry, and what the solver derives from
    them is computed once and reused by every solve in the block instead of again per solve. Nested blocks share
    the outer one's. Editing conductances inside a block would leave what was derived stale: the trainer updates
    only after its block has closed. A copy or a pickled network (a worker's) is outside any block."""

    _fixed = None  # inside a block: {"totals": what validate() returned, key: what derived() made}

    @contextmanager
    def unchanged(self):
        if self._fixed is not None:
            yield self
            return
        derived = {}
        totals = self.validate(derived)
        self._fixed = {"totals": totals, **derived}
        try:
            yield self
        finally:
            self._fixed = None

    def derived(self, key, make):
        """``make()``, computed once per ``unchanged()`` block under ``key``; outside a block, every call."""
        fixed = self._fixed
        if fixed is None:
            return make()
        if key not in fixed:
            fixed[key] = make()
        return fixed[key]


@dataclass
class LayeredNetwork(Unchanged):
    sizes: tuple
    weights: list
    biases: list
    neurons: list
    gains: tuple
    bias_voltage: float = 1.0
    input_pairs: bool = True
    readout: str = "pairs"
    hidden_pairs: bool = False
    #: the model of every amplifier (each connection c >= 1 whose gain is not 1): ideal, or an op-amp
    amplifier: Amplifier = field(default_factory=Amplifier)
    #: set inside ``unchanged()``: the totals validated on entry and arrays derived from the conductances
    _fixed: dict | None = field(default=None, init=False, repr=False, compare=False)
    #: set inside ``grounded()``: per hidden layer a (batch, nodes) array, 0 where a node is held at 0 V
    _grounded: list | None = field(default=None, init=False, repr=False, compare=False)
    #: memory the checks reuse from call to call (the signed input weights ``validate`` writes): never copied
    _scratch: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.sizes = tuple(int(s) for s in self.sizes)
        self.gains = tuple(float(a) for a in self.gains)
        self.amplifier = amplifier_model(self.amplifier)
        self.weights = [np.asarray(w, dtype=float) for w in self.weights]
        self.biases = [np.asarray(b, dtype=float) for b in self.biases]
        self.validate()

    # ---- structure -------------------------------------------------------------------------
    @property
    def n_connections(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_features(self) -> int:
        return self.sizes[0] // 2 if self.input_pairs else self.sizes[0]

    @property
    def n_targets(self) -> int:
        return self.sizes[-1] // 2 if self.readout == "pairs" else self.sizes[-1]

    @property
    def free_sizes(self) -> tuple:
        return self.sizes[1:]

    @property
    def amplified(self) -> list:
        """The connections driven by an amplifier: c >= 1 with a gain other than 1."""
        return [c for c in range(1, self.n_connections) if self.gains[c] != 1.0]

    @property
    def op_amps(self) -> bool:
        """Whether the network has amplifiers and they are op-amps (no energy function; their small-signal terms
        depend on the operating point)."""
        return not self.amplifier.ideal and bool(self.amplified)

    def require_ideal_amplifiers(self, what: str) -> None:
        """Raises a one-line NetworkError where ``what`` needs the ideal amplifiers' energy function."""
        if self.op_amps:
            raise NetworkError(f"{what} takes ideal amplifiers; this network has {self.amplifier.describe()}: "
                               "use the native or spice backend, or ideal amplifiers")

    def amplifier_output(self, c: int, driver, load) -> np.ndarray:
        """The output voltage of connection c's amplifiers (batch, rows) given the driving layer's voltages and
        the driven layer's (``load``): a V for ideal ones, the op-amp's exact DC output otherwise."""
        if self.amplifier.ideal or self.gains[c] == 1.0:
            return self.gains[c] * self.driven(c, driver)
        return self.amplifier.output(*self._amplifier_terms(c, driver, load))

    def amplifier_slopes(self, c: int, driver, load) -> tuple:
        """(alpha, rho) of connection c's amplifiers at the driving and driven layers' voltages: the output's
        small-signal gain from its input, and its share of a change of the load current (``Amplifier.slopes``;
        (a, 0) where the amplifier is ideal or the connection has none)."""
        if self.amplifier.ideal or self.gains[c] == 1.0:
            w, signs = self.weights[c], self.row_signs(c)
            gain = self.gains[c] if signs is None else self.gains[c] * signs
            return Amplifier.slopes(self.amplifier, gain, self.driver_rows(c, driver), w.sum(1), load @ w.T)
        return self.amplifier.slopes(*self._amplifier_terms(c, driver, load))

    def _amplifier_terms(self, c: int, driver, load) -> tuple:
        """What an amplifier model's ``output`` and ``slopes`` take for connection c, one amplifier per conductance
        row: its signed loop gain (the nominal one times the die's mismatch; negative for the inverting half of a
        differential amplifier), its input (the driving node's voltage), its load's conductance and current, its
        offset."""
        a, w = self.gains[c], self.weights[c]
        n = w.shape[0]
        f = self.amplifier.gain_factors(c, n)
        gain = a if f is None else a * f
        signs = self.row_signs(c)
        if signs is not None:
            gain = gain * signs
        return (gain, self.driver_rows(c, driver), w.sum(1), load @ w.T, self.amplifier.input_offsets(c, n))

    def row_signs(self, c: int):
        """+1 for each conductance row driven by a non-inverting output, -1 for an inverting one; None where every
        row is non-inverting (a single-ended connection)."""
        if c > 0 and self.hidden_pairs:
            n = self.sizes[c]
            return np.concatenate([np.ones(n), -np.ones(n)])
        return None

    def driver_rows(self, c: int, u: np.ndarray) -> np.ndarray:
        """The driving node's voltage for each conductance row of connection c (both halves read the same node)."""
        return np.hstack([u, u]) if c > 0 and self.hidden_pairs else u

    def to_drivers(self, c: int, rows: np.ndarray) -> np.ndarray:
        """A quantity per conductance row of connection c summed onto its driving node (the halves added)."""
        if c > 0 and self.hidden_pairs:
            n = self.sizes[c]
            return rows[..., :n] + rows[..., n:]
        return rows

    def rows(self, c: int) -> int:
        """Conductance rows of connection c: its driving layer's nodes, twice over for a differential one."""
        return 2 * self.sizes[c] if c > 0 and self.hidden_pairs else self.sizes[c]

    def driven(self, c: int, u: np.ndarray) -> np.ndarray:
        """What connection c's conductances see on their driving side, before the gain: u, or [u, -u]."""
        return np.hstack([u, -u]) if c > 0 and self.hidden_pairs else u

    def signed_weights(self, c: int) -> np.ndarray:
        """Connection c as one signed matrix over its driving layer's nodes: G+ - G- for a differential
        amplifier (the drive it gives either way), the conductances themselves otherwise."""
        w = self.weights[c]
        if c > 0 and self.hidden_pairs:
            n = self.sizes[c]
            return w[:n] - w[n:]
        return w

    def row_conductance(self, c: int, rows=None) -> np.ndarray:
        """Conductance from each node of layer c into connection c (both halves of a differential pair);
        ``rows``: the weights' row sums where already computed."""
        s = self.weights[c].sum(1) if rows is None else rows
        if c > 0 and self.hidden_pairs:
            n = self.sizes[c]
            return s[:n] + s[n:]
        return s

    @property
    def energy_weights(self) -> np.ndarray:
        """kappa[c]: weight of connection c's terms in the energy (1 without amplifiers)."""
        kappa = np.ones(self.n_connections)
        for c in range(1, self.n_connections):
            kappa[c] = kappa[c - 1] / self.gains[c] ** 2
        return kappa

    @property
    def readout_matrix(self) -> np.ndarray:
        return _readout_matrix(self.readout, self.sizes[-1])

    @contextmanager
    def grounded(self, masks):
        """A block in which some hidden nodes are held at 0 V, sample by sample: ``masks`` has one (batch, nodes)
        array per hidden layer (or None for a layer left free), 1 where a node is free and 0 where a switch ties it
        to ground; every solve in the block must settle that batch. The circuit a hardware dropout makes: a reset
        switch per hidden node, closed on a random subset for each training sample, in the free and the nudged
        phases alike, so the phases settle one sub-circuit and EqProp's estimate is that sub-circuit's gradient
        (a grounded node's conductances to clamped nodes see the same drop in both phases and are not moved).
        Only the solvers that know the switches read them (``circuits.solve`` on a layered network)."""
        hidden = len(self.sizes) - 2
        masks = list(masks)
        if len(masks) != hidden:
            raise NetworkError(f"grounded() needs one mask per hidden layer ({hidden}), got {len(masks)}")
        held = []
        for c, m in enumerate(masks):
            if m is not None:
                m = np.ascontiguousarray(m, dtype=float)
                if m.ndim != 2 or m.shape[1] != self.sizes[c + 1] or not np.isin(m, (0.0, 1.0)).all():
                    raise NetworkError(f"the mask of hidden layer {c + 1} must be a (batch, {self.sizes[c + 1]}) "
                                       f"array of 0 (grounded) and 1 (free), got shape {np.shape(m)}")
            held.append(m)
        batches = {m.shape[0] for m in held if m is not None}
        if len(batches) > 1:
            raise NetworkError(f"the masks of grounded() cover different batches ({sorted(batches)} samples)")
        outer, self._grounded = self._grounded, (held if batches else None)
        try:
            yield self
        finally:
            self._grounded = outer

    def validate(self, derived: dict | None = None) -> list:
        """Raises NetworkError naming what is wrong; returns each free layer's total node conductance
        (``node_totals``), computed on the way: the solver reuses it. One compiled pass over each conductance
        array (its minimum and sums); the element-by-element checks run only to name a fault. Inside
        ``unchanged()`` the block's entry check stands and its totals are returned.

        ``derived``: a dict into which the check puts what it formed on the way for the solver: with +x/-x input
        pairs, ``"source_weights"``, the signed input weights G+ - G- (``kernels.pair_sums``: read in the same
        pass as the check; an array the network reuses at the next such call, valid until then)."""
        if self._fixed is not None:
            return self._fixed["totals"]
        s = self.sizes
        if len(s) < 2 or min(s) < 1:
            raise NetworkError(f"sizes must list at least an input and an output layer of >= 1 node, got {s}")
        if self.input_pairs and s[0] % 2:
            raise NetworkError(f"with input_pairs the input layer counts +x and -x sources, so sizes[0] must be even, got {s[0]}")
        if self.readout not in READOUTS:
            raise NetworkError(f"unknown readout {self.readout!r}; use one of {READOUTS}")
        if self.readout == "pairs" and s[-1] % 2:
            raise NetworkError(f"readout='pairs' needs an even number of output nodes, got {s[-1]}")
        L = self.n_connections
        for name, seq in (("weights", self.weights), ("biases", self.biases), ("neurons", self.neurons), ("gains", self.gains)):
            if len(seq) != L:
                raise NetworkError(f"{name} needs one entry per connection ({L}), got {len(seq)}")
        totals = self._checked(derived)
        if totals is not None:
            return totals
        sums = {}  # connection -> (column sums, row sums) of its weights, where one compiled pass gave them
        for c in range(L):
            for name, arr, shape in (("weights", self.weights[c], (self.rows(c), s[c + 1])),
                                     ("biases", self.biases[c], (2, s[c + 1]))):
                if arr.shape != shape:
                    raise NetworkError(f"{name}[{c}] must have shape {shape}, got {arr.shape}")
                if name != "weights":
                    got = None
                elif c == 0 and self.input_pairs and derived is not None:
                    got = kernels.pair_sums(arr, self._signed_buffer(arr))
                    if got is not None:  # (ok, column sums): the row sums of the sources feed no node's total
                        derived["source_weights"] = self._scratch["signed"]
                        got = (got[0], got[1], None)
                else:
                    got = kernels.conductance_sums(arr)
                if got is not None:
                    sums[c] = got[1:]
                    if got[0]:  # every entry >= 0 (NaN and -inf fail); +inf shows in the node totals below
                        continue
                elif arr.min(initial=0.0) >= 0.0:  # NaN and -inf fail this; +inf shows in the node totals below
                    continue
                if not np.isfinite(arr).all():
                    raise NetworkError(f"{name}[{c}] holds NaN/inf conductances")
                if (arr < 0).any():
                    i = np.unravel_index(np.argmin(arr), arr.shape)
                    raise NetworkError(f"{name}[{c}]{list(i)} = {arr[i]:.3g} S is negative: conductances must be >= 0 "
                                       "(signed weights come from the +x/-x input pairs)")
            if self.neurons[c] is not None and not isinstance(self.neurons[c], DiodeClamp):
                raise NetworkError(f"neurons[{c}] must be a DiodeClamp or None, got {type(self.neurons[c]).__name__}")
            size = getattr(self.neurons[c].diode, "size", None) if self.neurons[c] is not None else None
            if size is not None and size != self.sizes[c + 1]:
                raise NetworkError(f"neurons[{c}]'s diodes were drawn for {size} nodes, its layer has "
                                   f"{self.sizes[c + 1]}: draw the die for this network")
            if not np.isfinite(self.gains[c]) or self.gains[c] <= 0:
                raise NetworkError(f"gains[{c}] must be positive, got {self.gains[c]}")
        if self.gains[0] != 1.0:
            raise NetworkError("gains[0] must be 1: inputs are ideal sources (scale the inputs instead)")
        if not isinstance(self.amplifier, Amplifier):
            raise NetworkError(f"amplifier must be an Amplifier model, got {type(self.amplifier).__name__}")
        if not self.amplifier.ideal:
            if not self.amplified:
                raise NetworkError(f"the network has no amplifiers (every gain is 1) for the {self.amplifier.describe()} "
                                   "to model; give the hidden layers a gain (--gain)")
            if self.hidden_pairs and not getattr(self.amplifier, "inverting", False):
                raise NetworkError(f"the {self.amplifier.describe()} have no inverting form, which differential hidden "
                                   "layers (hidden_pairs) need; use op-amp macromodels (--amplifier \"a0=...\") or "
                                   "ideal amplifiers there")
        # A free node needs a resistive path to a source; in a layered net that means a nonzero column.
        with np.errstate(over="ignore"):  # sums past the float range are reported below
            totals = self.node_totals(sums)
        for c, total in enumerate(totals):
            low, high = total.min(), total.max()  # two reductions; the detailed checks only when one fails
            if low > 0 and high < np.inf:
                continue
            if not np.isfinite(total).all():  # an inf conductance (NaN and negatives were caught above)
                bad = next(((n, k) for k in range(L) for n, a in (("weights", self.weights[k]),
                                                                  ("biases", self.biases[k]))
                            if not np.isfinite(a).all()), None)
                if bad is None:
                    raise NetworkError(f"the conductances at layer {c + 1} sum past the float range (inf): scale "
                                       "them down (they are in siemens)")
                raise NetworkError(f"{bad[0]}[{bad[1]}] holds NaN/inf conductances")
            if (total <= 0).any():
                j = int(np.argmin(total))
                raise NetworkError(f"node {j} of layer {c + 1} is floating: all its conductances are zero; "
                                   "give it a conductance to a neighbour or a bias source")
        return totals

    def _checked(self, derived):
        """``validate``'s compiled path: every check the loop below makes, in one compiled call
        (``kernels.layered_sums``: each connection's conductance pass, then one pass for the biases and the node
        totals) instead of a dozen numpy calls on small arrays, which cost a bare solve more than its check of the
        input conductances (``benchmarks/solve_parts.py``). The same totals bit for bit (the same kernels, the same
        sums in the same order), as views of one array. None where the kernels do not serve an array or any check
        fails: the loop then runs and names the fault."""
        s, ws, bs = self.sizes, self.weights, self.biases
        L = len(s) - 1
        pairs = self.hidden_pairs
        if not kernels.serves(*ws, *bs):
            return None
        for c in range(L):
            w, b, n = ws[c], bs[c], s[c + 1]
            if (w.shape != ((2 * s[c] if c and pairs else s[c]), n) or b.shape != (2, n)
                    or not 0.0 < self.gains[c] < math.inf):
                return None
            clamp = self.neurons[c]
            if clamp is not None and (not isinstance(clamp, DiodeClamp)
                                      or getattr(clamp.diode, "size", None) not in (None, n)):
                return None
        amp = self.amplifier
        if self.gains[0] != 1.0 or not isinstance(amp, Amplifier) or not (
                amp.ideal or (self.amplified and not (pairs and not getattr(amp, "inverting", False)))):
            return None
        signed = self.input_pairs and derived is not None  # the check forms G+ - G- for the solver
        out = np.empty(sum(s) - s[0])
        if not kernels.layered_sums(tuple(ws), tuple(bs), self._signed_buffer(ws[0]) if signed else kernels.EMPTY,
                                    signed, self.pair_split(), out):
            return None
        if signed:
            derived["source_weights"] = self._scratch["signed"]
        return self.layer_views(out)

    def pair_split(self) -> tuple:
        """Per connection, where its second block of rows starts when its source layer is a differential pair
        (``hidden_pairs``), else 0: how the compiled check sums a node's two rows (``kernels.layered_sums``)."""
        s = self.sizes
        return tuple(s[c] if c and self.hidden_pairs else 0 for c in range(len(s) - 1))

    def layer_views(self, out: np.ndarray) -> list:
        """The free layers' parts of ``out`` (one value per free node, layer after layer), as views."""
        views, a = [], 0
        for n in self.sizes[1:]:
            views.append(out[a:a + n])
            a += n
        return views

    def _signed_buffer(self, w) -> np.ndarray:
        """The kept (features, columns) array of the signed input weights, made again where the shape changed."""
        scratch = self._scratch
        if scratch is None:
            scratch = self._scratch = {}
        shape = (w.shape[0] // 2, w.shape[1])
        buf = scratch.get("signed")
        if buf is None or buf.shape != shape:
            buf = scratch["signed"] = np.empty(shape)
        return buf

    def node_totals(self, sums=None) -> list:
        """Total conductance at every free node (the sum of all its resistors), one array per free layer.
        ``sums``: {connection: (column sums, row sums) of its weights} already computed (``validate``)."""
        L = self.n_connections
        sums = sums or {}
        totals = []
        for c in range(L):
            cols = sums[c][0] if c in sums else self.weights[c].sum(0)
            total = cols + self.biases[c].sum(0)
            if c + 1 < L:
                total += self.row_conductance(c + 1, sums[c + 1][1] if c + 1 in sums else None)
            totals.append(total)
        return totals

    def copy(self) -> "LayeredNetwork":
        return copy.deepcopy(self)

    def __getstate__(self):
        # a copy or a pickled network (a worker's) may be edited: it does not inherit an unchanged() block
        return {**self.__dict__, "_fixed": None, "_grounded": None, "_scratch": None}

    # ---- inputs and outputs ------------------------------------------------------------------
    def check_inputs(self, x, finite: bool = True) -> np.ndarray:
        """x as a float (batch, n_features) array; raises InputError naming a wrong shape or a NaN.
        ``finite=False`` checks the shape only: for a caller that checks a smaller product of x."""
        return _check_inputs(x, self.n_features, finite=finite)

    def encode_inputs(self, x) -> np.ndarray:
        """Source voltages (batch, sizes[0]) for features x: [+x, -x] with input pairs."""
        x = _check_inputs(x, self.n_features)
        return np.hstack([x, -x]) if self.input_pairs else x

    def check_targets(self, y, batch: int) -> np.ndarray:
        y = _check_inputs(y, self.n_targets, what="y (targets)")
        if y.shape[0] != batch:
            raise InputError(f"y has {y.shape[0]} samples but x has {batch}")
        return y

    def free_node_names(self) -> list:
        names = []
        for c in range(1, self.n_connections):
            names += [f"h{c}_{j}" for j in range(self.sizes[c])]
        n_out = self.sizes[-1]
        if self.readout == "pairs":
            names += [f"out{k}p" for k in range(n_out // 2)] + [f"out{k}n" for k in range(n_out // 2)]
        else:
            names += [f"out{k}" for k in range(n_out)]
        return names

    def to_graph(self, validate: bool = True) -> "GraphNetwork":
        """The same circuit as a graph (used by the generic solver, the netlist writer and plots). A differential
        amplifier's two outputs are one edge's ``g`` (from +a V) and ``g_inv`` (from -a V) (``conductances``).
        ``validate=False``: the graph's check is left to its first solve (``GraphNetwork``)."""
        g = nx.Graph(amplifier=self.amplifier)
        s = self.sizes
        src = []
        nf = self.n_features
        for k in range(s[0]):
            if self.input_pairs:
                name, feat, sign = (f"in{k}p", k, 1.0) if k < nf else (f"in{k - nf}n", k - nf, -1.0)
            else:
                name, feat, sign = f"in{k}", k, 1.0
            g.add_node(name, role="input", feature=feat, sign=sign)
            src.append(name)
        g.add_node("biasp", role="bias", voltage=self.bias_voltage)
        g.add_node("biasn", role="bias", voltage=-self.bias_voltage)
        free = self.free_node_names()
        layers = [src]
        offset = 0
        for c in range(self.n_connections):
            names = free[offset: offset + s[c + 1]]
            offset += s[c + 1]
            last = c == self.n_connections - 1
            for j, name in enumerate(names):
                attrs = dict(role="output" if last else "hidden", neuron=self.neurons[c], layer=c + 1, index=j)
                if last:
                    attrs["readout"] = _readout_entry(self.readout, j, s[-1])
                g.add_node(name, **attrs)
            layers.append(names)
        for c in range(self.n_connections):
            w, gain = self.weights[c], self.gains[c]
            offsets = self.amplifier.input_offsets(c, w.shape[0]) if gain != 1.0 else None
            factors = self.amplifier.gain_factors(c, w.shape[0]) if gain != 1.0 else None
            n = len(layers[c])
            if offsets is not None:  # each amplifier's own input offset and gain (a die's mismatch), for the netlist
                for i, name in enumerate(layers[c]):
                    g.nodes[name]["amp_offset"] = float(offsets[i])
                    if factors is not None:
                        g.nodes[name]["amp_gain_factor"] = float(factors[i])
                    if len(offsets) > n:  # a differential amplifier: its inverting half's own
                        g.nodes[name]["amp_offset_inv"] = float(offsets[n + i])
                        if factors is not None:
                            g.nodes[name]["amp_gain_factor_inv"] = float(factors[n + i])
            pairs = c > 0 and self.hidden_pairs  # rows n.. are the conductances from the inverting outputs
            plus, minus = w[:n], (w[n:] if pairs else None)
            ii, jj = np.nonzero(plus if minus is None else plus + minus)  # conductances are >= 0
            for i, j in zip(ii, jj):
                attrs = {"g": float(plus[i, j])} if plus[i, j] else {}
                if minus is not None and minus[i, j]:
                    attrs["g_inv"] = float(minus[i, j])
                if gain != 1.0 or pairs:
                    attrs.update(gain=gain, driver=layers[c][i])
                g.add_edge(layers[c][i], layers[c + 1][j], **attrs)
            for b, bname in enumerate(("biasp", "biasn")):
                for j in np.nonzero(self.biases[c][b])[0]:
                    g.add_edge(bname, layers[c + 1][j], g=float(self.biases[c][b, j]))
        return GraphNetwork(g, n_features=self.n_features, readout=self.readout, validate=validate)


def _readout_entry(readout: str, j: int, n_out: int) -> tuple:
    if readout == "nodes":
        return (j, 1.0)
    half = n_out // 2
    return (j, 1.0) if j < half else (j - half, -1.0)


def layered(
    sizes,
    *,
    diode="ideal",
    rails=(-1.0, 1.0),
    output_diodes: bool = False,
    gain=1.0,
    g_range=None,
    bias_voltage: float = 1.0,
    input_pairs: bool = True,
    readout: str = "pairs",
    hidden_pairs: bool = False,
    amplifier=None,
    seed=0,
) -> LayeredNetwork:
    """A Kendall-style layered resistive network.

    ``sizes`` counts nodes: ``layered([1568, 100, 20])`` is the Kendall MNIST network (784 features as
    +x/-x source pairs, 100 hidden nodes, 10 output pairs). ``diode`` is 'ideal', 'shockley', 'pwl', a
    diode model instance or None (linear); ``rails`` are the clamp voltages of the hidden nodes;
    ``gain`` is one amplifier gain for every hidden layer or a list (one per hidden layer);
    ``g_range`` (siemens) bounds the uniform initial conductances, by default
    ``(0, 2e-6 * 2 / fan_in)`` per layer so every node sees about the same total conductance;
    ``hidden_pairs`` makes every amplifier after the first connection differential (see the module notes);
    ``amplifier`` models every amplifier: None (ideal), an ``OpAmp`` or its text (``"a0=1e3 rout=50"``).
    """
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise NetworkError(f"sizes must be a list of layer sizes, e.g. [8, 6, 4], got {sizes!r}") from None
    if any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
        raise NetworkError(f"sizes must be positive whole numbers of nodes, got {list(sizes)}")
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2:
        raise NetworkError(f"sizes needs at least input and output layers, got {sizes}")
    L = len(sizes) - 1
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NetworkError(f"seed must be a non-negative whole number, got {seed!r}")
    for name, v in (("bias_voltage", bias_voltage), ("rails", rails[0] if diode is not None else 0.0),
                    ("rails", rails[1] if diode is not None else 0.0)):
        if not np.isfinite(float(v)):
            raise NetworkError(f"{name} must be finite volts, got {v!r}")
    rng = np.random.default_rng(seed)
    clamp = None if diode is None else DiodeClamp(diode_model(diode), float(rails[0]), float(rails[1]))
    neurons = [clamp] * (L - 1) + [clamp if output_diodes else None]
    if np.isscalar(gain):
        gains = (1.0,) + (float(gain),) * (L - 1)
    else:
        gain = tuple(float(a) for a in gain)
        if len(gain) != L - 1:
            raise NetworkError(f"gain needs one value per hidden layer ({L - 1}), got {len(gain)}")
        gains = (1.0,) + gain
    weights, biases = [], []
    for c in range(L):
        rows = 2 * sizes[c] if c > 0 and hidden_pairs else sizes[c]
        lo, hi = g_range if g_range is not None else (0.0, 4e-6 / rows)
        if not (0 <= lo < hi):
            raise NetworkError(f"g_range must satisfy 0 <= low < high (siemens), got {(lo, hi)}")
        weights.append(rng.uniform(lo, hi, size=(rows, sizes[c + 1])))
        biases.append(rng.uniform(lo, hi, size=(2, sizes[c + 1])))
    return LayeredNetwork(sizes, weights, biases, neurons, gains, bias_voltage=bias_voltage,
                          input_pairs=input_pairs, readout=readout, hidden_pairs=bool(hidden_pairs),
                          amplifier=amplifier_model(amplifier))


def conductances(graph):
    """Every conductance of a graph network as (u, v, g, gain, driver): a plain resistor has gain None; an
    amplified edge gives g from +gain V_driver and, where it has one, g_inv from the inverting output, as gain
    -gain (the writer's and the graph solver's one amplifier per (driver, gain); its CCCS returns the output's
    current over -gain, which is how a differential amplifier's inverting half loads its input)."""
    for u, v, d in graph.edges(data=True):
        gain, driver = d.get("gain"), d.get("driver")
        if "g" in d:
            yield u, v, d["g"], gain, driver
        if "g_inv" in d:
            yield u, v, d["g_inv"], -gain, driver


class GraphNetwork(Unchanged):
    """Any topology: a networkx graph with node roles and conductance edges.

    Node attributes: ``role`` in {input, bias, hidden, output}; inputs carry ``feature`` and ``sign``
    (source voltage = sign * x[feature]); bias nodes carry ``voltage``; free nodes may carry
    ``neuron`` (a DiodeClamp); outputs carry ``readout=(target_index, sign)``. Edge attributes: ``g``
    in siemens and, for an amplified connection, ``gain`` and ``driver`` (the endpoint whose voltage
    the amplifier multiplies); a differential amplifier's edge may also carry ``g_inv``, the conductance
    from its inverting output (-gain V_driver), and then ``g`` only where that conductance is not zero.
    Read them with ``conductances``, which lists each as its own element.

    ``validate=False`` leaves the check to the first solve (every solve validates, or an ``unchanged()`` block
    on entry), or to whoever builds on the graph (``circuits.parasitics.wired`` checks the graph it makes of it).
    """

    def __init__(self, graph: nx.Graph, n_features: int, readout: str = "pairs", validate: bool = True):
        self.graph = graph
        self.amplifier = amplifier_model(graph.graph.get("amplifier"))
        self.n_features = int(n_features)
        self.readout = readout
        if validate:
            self.validate()

    def __getstate__(self):
        return {**self.__dict__, "_fixed": None}  # a copy or a worker's may be edited: outside the block

    @property
    def sources(self) -> list:
        return [n for n, r in self.graph.nodes(data="role") if r in SOURCE_ROLES]

    @property
    def free_nodes(self) -> list:
        return [n for n, r in self.graph.nodes(data="role") if r not in SOURCE_ROLES]

    @property
    def output_nodes(self) -> list:
        return [n for n, r in self.graph.nodes(data="role") if r == "output"]

    @property
    def n_targets(self) -> int:
        return 1 + max(self.graph.nodes[n]["readout"][0] for n in self.output_nodes)

    def validate(self, derived: dict | None = None) -> None:
        """Raises NetworkError naming what is wrong (roles, devices, conductances, floating nodes, amplifier loops
        without an energy); inside ``unchanged()`` the block's entry check stands. ``derived``: as the layered
        network's (a graph's check forms nothing the solver reuses)."""
        if self._fixed is not None:
            return None
        g = self.graph
        for n, data in g.nodes(data=True):
            role = data.get("role")
            if role not in ROLES:
                raise NetworkError(f"node {n!r} has unknown role {role!r}; use one of {ROLES}")
            if role == "input":
                f = data.get("feature")
                if not isinstance(f, (int, np.integer)) or not 0 <= f < self.n_features:
                    raise NetworkError(f"input node {n!r} needs feature in [0, {self.n_features}), got {f!r}")
            if role == "bias" and not np.isfinite(data.get("voltage", np.nan)):
                raise NetworkError(f"bias node {n!r} needs a finite 'voltage'")
            neuron = data.get("neuron")
            if neuron is not None and not isinstance(neuron, DiodeClamp):
                raise NetworkError(f"node {n!r} has unknown device {neuron!r}; a neuron must be a DiodeClamp or None")
            if role == "output" and "readout" not in data:
                raise NetworkError(f"output node {n!r} needs readout=(target_index, sign)")
            cap = data.get("capacitance")  # its own, for transients (netlists.Transient)
            if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, float, np.floating))
                                    or not np.isfinite(cap) or not cap > 0):
                raise NetworkError(f"node {n!r} has capacitance {cap!r}: a node's capacitance must be positive farads")
        for u, v, data in g.edges(data=True):
            unknown = set(data) - {"g", "g_inv", "gain", "driver"}
            if unknown:
                raise NetworkError(f"edge {u!r}-{v!r} has unknown device attributes {sorted(unknown)}")
            if "g_inv" in data and "gain" not in data:
                raise NetworkError(f"edge {u!r}-{v!r} has g_inv (a conductance from an inverting amplifier output) "
                                   "but no gain and driver")
            # every conductance the edge carries (at least g); g alone may be absent beside g_inv
            for key in [k for k in ("g", "g_inv") if k in data] or ["g"]:
                gval = data.get(key)
                if gval is None or not np.isfinite(gval) or gval <= 0:
                    what = gval if key == "g" else f"g_inv = {gval!r}"
                    raise NetworkError(f"edge {u!r}-{v!r} has conductance {what!s}: conductances must be positive "
                                       "siemens")
            if "gain" in data:
                if data.get("driver") not in (u, v) or not data["gain"] > 0:
                    raise NetworkError(f"amplified edge {u!r}-{v!r} needs gain > 0 and driver equal to one endpoint")
            if "g_inv" in data and not getattr(self.amplifier, "inverting", False):
                raise NetworkError(f"edge {u!r}-{v!r} is driven by a differential amplifier: the "
                                   f"{self.amplifier.describe()} have no inverting form; use op-amp macromodels or "
                                   "ideal amplifiers there")
        if not self.sources:
            raise NetworkError("the network has no source (input or bias) node")
        if not self.output_nodes:
            raise NetworkError("the network has no output node")
        reached = set()
        for comp in nx.connected_components(g):
            if any(g.nodes[n]["role"] in SOURCE_ROLES for n in comp):
                reached |= comp
        floating = [n for n in self.free_nodes if n not in reached]
        if floating:
            raise NetworkError(f"{len(floating)} node(s) have no resistive path to a source, e.g. {floating[:5]}; "
                               "connect them or remove them")
        self._check_energy_exists()

    def _check_energy_exists(self) -> None:
        """Amplifiers keep an energy function only if every loop of free nodes has gain product 1.

        Each free node gets an energy weight kappa with kappa_o = kappa_d / a^2 across an amplified edge
        (driver d, other end o) and equal weights across a plain resistor; a loop that contradicts
        itself leaves the circuit without an energy, and EqProp without its theorem.
        """
        g = self.graph
        free = set(self.free_nodes)
        log_kappa = {}
        for start in free:
            if start in log_kappa:
                continue
            log_kappa[start] = 0.0
            stack = [start]
            while stack:
                u = stack.pop()
                for w, data in g[u].items():
                    if w not in free:
                        continue
                    step = 0.0
                    if "gain" in data:  # (a differential edge's inverting half has the same a^2)
                        step = -2 * np.log(data["gain"]) if data["driver"] == u else 2 * np.log(data["gain"])
                    want = log_kappa[u] + step
                    if w not in log_kappa:
                        log_kappa[w] = want
                        stack.append(w)
                    elif abs(log_kappa[w] - want) > 1e-9:
                        raise NetworkError(f"amplifier gains around a loop through {u!r} and {w!r} do not multiply "
                                           "to 1: the circuit has no energy function, so EqProp does not apply; "
                                           "make every loop's gain product 1")
        self.energy_weights = {n: float(np.exp(k)) for n, k in log_kappa.items()}

    def check_inputs(self, x) -> np.ndarray:
        return _check_inputs(x, self.n_features)

    def encode_inputs(self, x) -> np.ndarray:
        """Source voltages (batch, n_sources) in the order of ``self.sources``."""
        x = _check_inputs(x, self.n_features)
        cols = []
        for n in self.sources:
            d = self.graph.nodes[n]
            cols.append(d["sign"] * x[:, d["feature"]] if d["role"] == "input" else np.full(len(x), d["voltage"]))
        return np.stack(cols, axis=1)

    def check_targets(self, y, batch: int) -> np.ndarray:
        y = _check_inputs(y, self.n_targets, what="y (targets)")
        if y.shape[0] != batch:
            raise InputError(f"y has {y.shape[0]} samples but x has {batch}")
        return y
