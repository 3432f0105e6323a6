"""Optimizer base class: parameter groups, per-parameter state, zero_grad and
state_dict/load_state_dict in torch.optim's layout (state keyed by parameter index)."""
import copy
import numbers

from ..autograd import no_grad
from ..tensor import Tensor


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _check_number(name, value, low=None, low_open=False, high=None, high_open=False, what=None):
    """ValueError in torch's words ("Invalid learning rate: -1") unless low <= value <= high."""
    what = what or name
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}")
    bad = (low is not None and (value <= low if low_open else value < low)) or \
          (high is not None and (value >= high if high_open else value > high))
    if bad or value != value:
        raise ValueError(f"Invalid {what}: {value}")
    return value


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = {}  # Parameter -> dict of its state (Parameters hash by identity)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        if isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(g):
                if k != "params":
                    s += f"\n    {k}: {g[k]}"
        return s + "\n)"

    def add_param_group(self, param_group):
        """Add a dict {'params': [...], hyper-parameter overrides...}; missing
        hyper-parameters take the optimizer's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("param_group has no 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
            if not p.dtype.is_floating_point:
                raise ValueError(f"can only optimize floating point Tensors, got {p.dtype.name}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        group["params"] = params
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {k}")
            group.setdefault(k, v)
        self._validate_group(group)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if existing & {id(p) for p in params}:
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _validate_group(self, group):
        pass

    def _state_to_param_devices(self):
        """Move state tensors to their parameter's device: after model.to(device) moved the
        parameters of an optimizer that already has state (resumed, or stepped before)."""
        for p, s in self.state.items():
            for name, v in s.items():
                if isinstance(v, Tensor) and v.device != p.device:
                    s[name] = v.detach().to(device=p.device)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = p.grad.detach()
                    p.grad.fill_(0)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            from ..autograd import enable_grad
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                buckets = {}  # (device, dtype) -> (params, grads): one multi-tensor kernel call each
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    dtype = p.dtype
                    if g.dtype != dtype:
                        g = g.to(dtype=dtype)
                    if not g.is_contiguous():  # the fused kernels walk param and grad in step
                        g = g.contiguous()
                    params, grads = buckets.setdefault((p.device, dtype), ([], []))
                    params.append(p)
                    grads.append(g)
                for params, grads in buckets.values():
                    self._update(group, params, grads, [self.state.setdefault(p, {}) for p in params])
        return loss

    def _update(self, group, params, grads, states):
        """Update `params` (one device, one dtype, all with a gradient) in place; states[i]
        is the state dict of params[i]."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """{'state': {index: {name: value}}, 'param_groups': [{hyper..., 'params': [index...]}]};
        indices number the parameters across groups in order. Tensors are references."""
        index, groups, n = {}, [], 0
        for g in self.param_groups:
            pg = {k: v for k, v in g.items() if k != "params"}
            pg["params"] = list(range(n, n + len(g["params"])))
            for i, p in enumerate(g["params"]):
                index[id(p)] = n + i
            n += len(g["params"])
            groups.append(pg)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state and hyper-parameters from state_dict() output (tensors are copied and
        cast to their parameter's dtype and device)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        for i, (sg, g) in enumerate(zip(saved_groups, self.param_groups)):
            if len(sg["params"]) != len(g["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group: group {i} has {len(sg['params'])} parameters saved, "
                                 f"{len(g['params'])} here")
        id_map = {}
        for sg, g in zip(saved_groups, self.param_groups):
            for saved_index, p in zip(sg["params"], g["params"]):
                id_map[int(saved_index)] = p
        new_state = {}
        for k, s in state_dict["state"].items():
            k = int(k)  # keys may come back as strings from a file
            if k not in id_map:
                raise ValueError(f"loaded optimizer state refers to parameter index {k}, which no group lists")
            p = id_map[k]
            entry = {}
            for name, v in s.items():
                if isinstance(v, Tensor):
                    if tuple(v.shape) != tuple(p.shape) and v.ndim > 0:
                        raise ValueError(f"optimizer state '{name}' of parameter {k} has shape {tuple(v.shape)}, "
                                         f"the parameter has shape {tuple(p.shape)}")
                    v = v.detach().to(dtype=p.dtype if v.dtype.is_floating_point else v.dtype,
                                      device=p.device).clone()
                else:
                    v = copy.deepcopy(v)
                entry[name] = v
            new_state[p] = entry
        self.state = new_state
        for sg, g in zip(saved_groups, self.param_groups):
            for key, v in sg.items():
                if key != "params":
                    g[key] = tuple(v) if isinstance(v, list) and key == "betas" else copy.deepcopy(v)
