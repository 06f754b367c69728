"""Graph rewrites: small named passes run by one explicit, ordered pipeline.

A pass is a list of local rules (node -> replacement or None) applied bottom-up
to a fixed point; each rule is registered with the ops it matches
(``@rule(multiply)``, :mod:`.registry`), so a node tries only its own op's rules.
Rebuilding a node goes through hash-consing, so common subexpressions merge after
every rewrite. Rules never change values (each is tested by evaluating before and
after on random inputs); a few change *how* a value is computed, for numerical
stability (``log(sigmoid(x)) = -softplus(-x)``, :mod:`.stable`).

The modules: ``registry`` (the ``rule`` decorator and the dispatching pass),
``algebra`` and ``movement`` (identities), ``scalars`` (numbers to the front,
divisors to the back), ``fold`` (constant folding), ``stable``, ``canonical``
(commutative argument order) and ``pipeline`` (``PIPELINE`` and ``optimize``).

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> print(sd.optimize((x * 1 + 0) * (y * x) - -(-y)))
x*(x*y) - y
"""

from .canonical import COMMUTATIVE, canonical_order, structure_key
from .fold import EXACT_INT, FOLD_INPUT_LIMIT, FOLD_LIMIT, fold_constants
from .pipeline import PIPELINE, optimize
from .registry import ANY, rule, rules_for, run_pass

__all__ = ["ANY", "COMMUTATIVE", "EXACT_INT", "FOLD_INPUT_LIMIT", "FOLD_LIMIT", "PIPELINE", "canonical_order",
           "fold_constants", "optimize", "rule", "rules_for", "run_pass", "structure_key"]
