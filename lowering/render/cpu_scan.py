"""The cpu kernel of a scan: its body lowered once, as a program of its own, called T times.

The body is scheduled and rendered like any graph (its kernels fused, its temporaries planned in
an arena of its own, which is this kernel's scratch) and emitted at namespace scope as a static
entry ``scan_body_<hash>``. The kernel loops over the steps and hands the body pointers, never
copies: x_t is ``xs + t·size``, a carry's input is the slice of its history the step before wrote
(or ``init``), each output is written straight into its slice of the packed result. A carry whose
history is not kept alternates between two scratch slots, its last step writing the result. The
generated source is the body's once, whatever T.
"""

from __future__ import annotations

import hashlib

from ..plan import dims as dimsmod
from ..plan.schedule import schedule
from .cpu_conv import scratch
from .scalar import C_TYPE
from .writer import Body, KernelWriter


def _numel(shape):
    out = 1
    for d in shape:
        out = out * d
    return out


def _input_pointer(w: KernelWriter, node, key: str) -> tuple[list[str], str]:
    """(lines, pointer) of a scan input as a contiguous array: its buffer where it is one, else
    a copy into scratch (a view that is not contiguous, a scalar constant)."""
    view = w.s.views.get(id(node))
    if view is not None and view.is_contiguous:
        w.reads[view.buffer.name] = view.buffer
        return [], view.buffer.name + (f" + {view.offset}" if view.offset else "")
    shape = w.s.shape_of(node)
    t = C_TYPE[node.dtype]
    ptr = scratch(w, key, node.dtype, max(_numel(shape), 1) if isinstance(_numel(shape), int) else _numel(shape))
    var = f"{key}_ptr"
    idx = [f"i{a}" for a in range(len(shape))]
    b = Body()
    v = w.value(node, idx, b)
    lines = [f"{t}* {var} = {ptr};"]
    for a, (i, d) in enumerate(zip(idx, shape)):
        lines.append("  " * a + f"for (int64_t {i} = 0; {i} < {d}; ++{i}) {{")
    flat = "0"
    for i, d in zip(idx, shape):
        flat = f"({flat}) * {d} + {i}"
    depth = len(shape)
    lines += ["  " * depth + line for line in b.lines] + ["  " * depth + f"{var}[{flat}] = {v};"]
    lines += ["  " * (depth - 1 - a) + "}" for a in range(depth)]
    return lines, var


def render_scan(w: KernelWriter, program) -> list[str]:
    """The scan kernel's statements; ``program`` renders a schedule's pieces as :mod:`.cpu_unit`
    does (``render_kernels``, ``entry_function``, ``const_definition``), passed in by it."""
    from symdiff.rewrite import optimize

    render_kernels, entry_function, _const_definition = program

    node = w.k.node
    body = node.attr("body")
    reverse, history = node.attr("reverse"), node.attr("history")
    nc, nx = len(body.carries), len(body.xs)
    outputs = optimize(list(body.outputs))
    tag = hashlib.sha256(body.digest.encode() + repr(sorted(map(str, w.s.bindings.items()))).encode()).hexdigest()[:10]
    hoisted, outputs, holders = hoist_invariants(outputs, body)
    step_inputs = list(body.placeholders) + holders
    w.definitions, w.nested_headers = [], set()

    def nested(outs, ins, entry):
        sched = schedule(outs, ins, bindings=w.s.bindings, epilogues=True)
        for k, c in enumerate(sched.consts):
            c.name = f"c_{entry}_{k}"
        headers, definitions, functions, reads, memory = render_kernels(sched)
        w.definitions += definitions + [_const_definition(b) for b in sched.consts] + functions \
            + ["\n".join(entry_function(sched, reads, f"static int {entry}"))]
        w.nested_headers |= headers
        return sched, memory

    entry = f"scan_body_{tag}"
    _, memory = nested(outputs, step_inputs, entry)
    t = C_TYPE[node.dtype]
    length = w.s.shape_of(node.inputs[nc])[0] if nx else dimsmod.resolve((node.attr("length"),), w.s.bindings)[0]
    lines = [f"const int64_t steps = {length};"]
    lines += [f"(void){s.name};" for s in w.s.runtime]
    out = w.k.out.buffer.name + (f" + {w.k.out.offset}" if w.k.out.offset else "")
    arena = scratch(w, "body_arena", "bool", memory.arena_bytes if memory.arena_bytes else 1)
    ptrs = []
    for k, inp in enumerate(node.inputs):
        pre, p = _input_pointer(w, inp, f"in{k}_s")
        lines += pre
        ptrs.append(p)
    # the packed layout, resolved: where each part starts and how big one step of it is
    from symdiff.scan import layout_of
    layout = [dimsmod.resolve(p, w.s.bindings) for p in layout_of(body, node.attr("length"), history)]
    offsets, at = [], 0
    for part in layout:
        offsets.append(at)
        at = at + _numel(part)
    step_size = [_numel(dimsmod.resolve(c.shape, w.s.bindings)) for c in body.carries] + \
        [_numel(dimsmod.resolve(y.shape, w.s.bindings)) for y in body.ys]
    pings = {}
    for k, keep in enumerate(history):
        if not keep:
            pings[k] = scratch(w, f"ping{k}", node.dtype, 2 * step_size[k])
    invariant = []  # the loop-invariant values (a weight's transpose, a product of weights): computed once
    if hoisted:
        _, pro_memory = nested(hoisted, list(body.consts), f"scan_prologue_{tag}")
        pro_arena = scratch(w, "prologue_arena", "bool", pro_memory.arena_bytes if pro_memory.arena_bytes else 1)
        n_pro = len(body.consts) + len(hoisted) + 1
        lines.append(f"void* prologue[{n_pro}];")
        for i in range(len(body.consts)):
            lines.append(f"prologue[{i}] = (void*)({ptrs[nc + nx + i]});")
        for k, h in enumerate(hoisted):
            size = _numel(dimsmod.resolve(h.shape, w.s.bindings))
            ptr = scratch(w, f"invariant{k}", h.dtype, size if size != 0 else 1)
            invariant.append(ptr)
            lines.append(f"prologue[{len(body.consts) + k}] = (void*)({ptr});")
        lines.append(f"prologue[{n_pro - 1}] = (void*)({pro_arena});")
        lines.append(f"if (scan_prologue_{tag}(prologue, {'dims' if w.s.runtime else 'nullptr'}, error, error_size)) "
                     "return 1;")
    n_slots = len(step_inputs) + len(body.outputs) + 1
    lines.append(f"{t}* packed = {out};")
    lines.append("for (int64_t step = 0; step < steps; ++step) {")
    lines.append(f"  const int64_t t = {'steps - 1 - step' if reverse else 'step'};")
    lines.append(f"  const int64_t before = {'t + 1' if reverse else 't - 1'};")
    lines.append("  (void)before;")
    lines.append(f"  void* slots[{n_slots}];")
    for k in range(nc):
        if history[k]:
            prev = f"packed + {offsets[k]} + before * {step_size[k]}"
        else:
            prev = f"{pings[k]} + ((step - 1) & 1) * {step_size[k]}"
        lines.append(f"  slots[{k}] = step == 0 ? (void*)({ptrs[k]}) : (void*)({prev});")
    for j in range(nx):
        size = _numel(dimsmod.resolve(body.xs[j].shape, w.s.bindings))
        lines.append(f"  slots[{nc + j}] = (void*)({ptrs[nc + j]} + t * {size});")
    for i in range(len(body.consts)):
        lines.append(f"  slots[{nc + nx + i}] = (void*)({ptrs[nc + nx + i]});")
    for k, ptr in enumerate(invariant):
        lines.append(f"  slots[{len(body.placeholders) + k}] = (void*)({ptr});")
    base = len(step_inputs)
    for k in range(nc):
        if history[k]:
            dest = f"packed + {offsets[k]} + t * {step_size[k]}"
        else:
            dest = f"(step == steps - 1 ? packed + {offsets[k]} : {pings[k]} + (step & 1) * {step_size[k]})"
        lines.append(f"  slots[{base + k}] = (void*)({dest});")
    for j in range(len(body.ys)):
        lines.append(f"  slots[{base + nc + j}] = (void*)(packed + {offsets[nc + j]} + t * {step_size[nc + j]});")
    lines.append(f"  slots[{n_slots - 1}] = (void*)({arena});")
    lines.append(f"  if ({entry}(slots, {'dims' if w.s.runtime else 'nullptr'}, error, error_size)) return 1;")
    lines.append("}")
    for k in range(nc):
        if not history[k]:  # no steps: the final carry is the initial one
            lines.append(f"if (steps == 0) for (int64_t e = 0; e < {step_size[k]}; ++e) "
                         f"packed[{offsets[k]} + e] = ({ptrs[k]})[e];")
    return lines


def hoist_invariants(outputs, body):
    """(hoisted, step outputs, holders): the body's values that no carry or x_t reaches (a
    weight's transpose, copied for a GEMM, is one) are computed once before the loop; the step
    reads them through new placeholders (``holders``) instead of recomputing them each step."""
    from symdiff.graph import toposort
    from symdiff.node import make, tensor

    varying = {id(p) for p in body.carries + body.xs}
    order = toposort(list(outputs))
    for n in order:
        if any(id(i) in varying for i in n.inputs):
            varying.add(id(n))
    picked, seen = [], set()
    for n in order:
        if id(n) not in varying:
            continue
        for i in n.inputs:
            if id(i) not in varying and not i.is_leaf and not i.is_constant and id(i) not in seen \
                    and i.op.name != "broadcast_to":  # a broadcast scalar is free where it is read
                seen.add(id(i))
                picked.append(i)
    if not picked:
        return [], list(outputs), []
    holders = [tensor(f"scan_invariant_{k}", p.shape, p.dtype) for k, p in enumerate(picked)]
    new = {id(p): h for p, h in zip(picked, holders)}
    for n in order:
        if id(n) in new or id(n) not in varying:
            continue
        ins = [new.get(id(i), i) for i in n.inputs]
        if any(a is not b for a, b in zip(ins, n.inputs)):
            new[id(n)] = make(n.op, ins, **n.attrs)
    return picked, [new.get(id(o), o) for o in outputs], holders
