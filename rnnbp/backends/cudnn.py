"""``rnnbp.backends.cudnn``: settings scripts assign (``deterministic``, ``benchmark``); rnnbp
has no cuDNN, so they are kept but change nothing (rnnbp's CPU kernels are deterministic).
"""
enabled = False
deterministic = False
benchmark = False


def is_available() -> bool:
    return False
