"""Time-sequence prediction: two stacked LSTM cells, stepped by hand, learn sine waves with L-BFGS.

Written in the style of the official PyTorch time-sequence-prediction example: the network reads
each wave one value at a time (`input.split(1, dim=1)`), then keeps predicting `future` values
from its own outputs; L-BFGS minimises the mean squared error through a closure.

Extra flags make runs comparable across frameworks: `--log` writes every loss the closure
computes (and the test losses) to a JSON file; `--double` runs in float64; `--save-init` and
`--init` write and read the initial weights as a NumPy .npz file.
"""
import argparse
import json

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim


def make_waves(n, length, period, seed):
    """n sine waves of `length` samples, each shifted by a random phase: (n, length) float64."""
    rng = np.random.RandomState(seed)
    x = np.empty((n, length), np.int64)
    x[:] = np.arange(length) + rng.randint(-4 * period, 4 * period, n).reshape(n, 1)
    return np.sin(x / 1.0 / period).astype('float64')


class Sequence(nn.Module):
    def __init__(self, hidden=51):
        super(Sequence, self).__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        outputs = []
        dtype = torch.double if input.dtype == torch.double else torch.float
        h_t = torch.zeros(input.size(0), self.hidden, dtype=dtype)
        c_t = torch.zeros(input.size(0), self.hidden, dtype=dtype)
        h_t2 = torch.zeros(input.size(0), self.hidden, dtype=dtype)
        c_t2 = torch.zeros(input.size(0), self.hidden, dtype=dtype)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):  # if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.cat(outputs, dim=1)
        return outputs


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=15, help='steps to run')
    parser.add_argument('--hidden', type=int, default=51, help='hidden units per LSTM cell')
    parser.add_argument('--waves', type=int, default=100, help='number of sine waves')
    parser.add_argument('--length', type=int, default=1000, help='samples per wave')
    parser.add_argument('--future', type=int, default=1000, help='values to predict past each test wave')
    parser.add_argument('--max-iter', type=int, default=20, help='L-BFGS iterations per step')
    parser.add_argument('--line-search', type=str, default='', help="'strong_wolfe' or '' (none)")
    parser.add_argument('--double', action='store_true', help='run in float64')
    parser.add_argument('--init', type=str, default='', help='load the initial weights from this .npz')
    parser.add_argument('--save-init', type=str, default='', help='write the initial weights to this .npz')
    parser.add_argument('--log', type=str, default='', help='write the loss trajectory to this JSON file')
    opt = parser.parse_args()
    # set random seed to 0
    np.random.seed(0)
    torch.manual_seed(0)
    # load data and make training set
    data = make_waves(opt.waves, opt.length, period=20, seed=2)
    input = torch.from_numpy(data[3:, :-1])
    target = torch.from_numpy(data[3:, 1:])
    test_input = torch.from_numpy(data[:3, :-1])
    test_target = torch.from_numpy(data[:3, 1:])
    if not opt.double:
        input, target, test_input, test_target = input.float(), target.float(), test_input.float(), test_target.float()
    # build the model
    seq = Sequence(opt.hidden)
    if opt.double:
        seq.double()
    if opt.init:
        arrays = np.load(opt.init)
        seq.load_state_dict({name: torch.from_numpy(arrays[name]) for name in arrays.files})
    if opt.save_init:
        np.savez(opt.save_init, **{name: t.detach().cpu().numpy() for name, t in seq.state_dict().items()})
    criterion = nn.MSELoss()
    # use LBFGS as optimizer since we can load the whole data to train
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8, max_iter=opt.max_iter,
                            line_search_fn=opt.line_search or None)
    losses = {'train': [], 'step': [], 'test': []}
    # begin to train
    for i in range(opt.steps):
        print('STEP: ', i)

        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            print('loss:', loss.item())
            losses['train'].append(loss.item())
            loss.backward()
            return loss
        loss = optimizer.step(closure)
        losses['step'].append(loss.item())
        # begin to predict, no need to track gradient here
        with torch.no_grad():
            future = opt.future
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            print('test loss:', loss.item())
            losses['test'].append(loss.item())
            y = pred.detach().numpy()
        assert y.shape == (3, test_input.size(1) + future)
    if opt.log:
        with open(opt.log, 'w') as f:
            json.dump(losses, f)
