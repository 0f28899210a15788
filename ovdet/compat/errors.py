"""Errors raised by the detectron2 compatibility layer."""


class MissingCompiledOpError(RuntimeError):
    """A detectron2 op that only exists in its compiled extension was called.

    The message names the op and the two ways out: a detectron2 built from source with its
    compiled ops, or a model/config that avoids the op.
    """

    def __init__(self, op: str, hint: str = "") -> None:
        msg = (
            f"detectron2 op '{op}' needs detectron2's compiled extension (detectron2._C), "
            "which this install lacks (Python-only detectron2 0.6 fallback). "
            "Install detectron2 from source with its compiled ops "
            "(python tools/install_detectron2.py on a machine that reaches GitHub, or "
            "pip install 'git+https://github.com/facebookresearch/detectron2.git')"
        )
        if hint:
            msg += f", or {hint}"
        super().__init__(msg + ".")
        self.op = op
