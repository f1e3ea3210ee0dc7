"""PyTorch's ``torch.nn.utils.rnn``: padding and packing, whose home is ``rnnbp.nn.recurrent.packing``."""
from ..recurrent.packing import (PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence,
                                 pad_sequence, unpack_sequence, unpad_sequence)

__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence", "pad_sequence",
           "unpack_sequence", "unpad_sequence"]
