"""Sequence classification with a recurrent network, a DataLoader, Adadelta, StepLR and checkpoints.

Written in the style of the official PyTorch MNIST-RNN example: an LSTM (or GRU) reads each
sequence row by row, its last output goes through BatchNorm1d, dropout and two linear layers,
and the network is trained with Adadelta under a StepLR schedule, one checkpoint per epoch
(`--resume` continues from one). The data are synthetic: each of `--classes` classes is a noisy
wave with its own frequency, made with NumPy from a fixed seed.

Extra flags make runs comparable across frameworks: `--log` writes every training loss (and the
test losses and accuracies) to a JSON file; `--double` runs in float64; `--save-init` and
`--init` write and read the initial weights as a NumPy .npz file; `--no-shuffle` keeps the
training order fixed.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, input_size, hidden_size, classes, rnn='LSTM', dropout=(0.25, 0.5)):
        super(Net, self).__init__()
        rnn_class = nn.LSTM if rnn == 'LSTM' else nn.GRU
        self.rnn = rnn_class(input_size=input_size, hidden_size=hidden_size, batch_first=True)
        self.batchnorm = nn.BatchNorm1d(hidden_size)
        self.dropout1 = nn.Dropout(dropout[0])
        self.dropout2 = nn.Dropout(dropout[1])
        self.fc1 = nn.Linear(hidden_size, 32)
        self.fc2 = nn.Linear(32, classes)

    def forward(self, input):
        output, hidden = self.rnn(input)           # (N, L, H)
        output = output[:, -1, :]                  # the last step's output: (N, H)
        output = self.batchnorm(output)
        output = self.dropout1(output)
        output = self.fc1(output)
        output = F.relu(output)
        output = self.dropout2(output)
        output = self.fc2(output)
        output = F.log_softmax(output, dim=1)
        return output


def make_data(n, length, features, classes, seed):
    """n sequences (n, length, features) and their labels (n,): class k is a wave of frequency k+1."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, classes, n)
    t = np.linspace(0, 2 * np.pi, length)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, features))
    waves = np.sin((labels.reshape(n, 1, 1) + 1) * t.reshape(1, length, 1) + phase)
    return waves + 0.3 * rng.randn(n, length, features), labels.astype(np.int64)


def train(args, model, device, train_loader, optimizer, epoch, losses):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses['train'].append(loss.item())
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break


def test(args, model, device, test_loader, losses):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)
    losses['test'].append(test_loss)
    losses['accuracy'].append(correct / len(test_loader.dataset))
    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))


def main():
    # Training settings
    parser = argparse.ArgumentParser(description='PyTorch sequence classifier')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N',
                        help='input batch size for training (default: 64)')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N',
                        help='input batch size for testing (default: 1000)')
    parser.add_argument('--epochs', type=int, default=14, metavar='N', help='number of epochs to train')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR', help='learning rate (default: 1.0)')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M',
                        help='learning rate step gamma (default: 0.7)')
    parser.add_argument('--rnn', type=str, default='LSTM', help='LSTM or GRU')
    parser.add_argument('--hidden', type=int, default=64, help='hidden units')
    parser.add_argument('--train-size', type=int, default=2000, help='training sequences')
    parser.add_argument('--test-size', type=int, default=500, help='test sequences')
    parser.add_argument('--length', type=int, default=28, help='sequence length')
    parser.add_argument('--features', type=int, default=4, help='values per step')
    parser.add_argument('--classes', type=int, default=4, help='number of classes')
    parser.add_argument('--dropout', type=float, nargs=2, default=(0.25, 0.5), help='the two dropout rates')
    parser.add_argument('--no-shuffle', action='store_true', default=False, help='keep the training order')
    parser.add_argument('--no-cuda', action='store_true', default=False, help='disables CUDA training')
    parser.add_argument('--no-mps', action='store_true', default=False, help='disables macOS GPU training')
    parser.add_argument('--dry-run', action='store_true', default=False, help='quickly check a single pass')
    parser.add_argument('--seed', type=int, default=1, metavar='S', help='random seed (default: 1)')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N',
                        help='how many batches to wait before logging training status')
    parser.add_argument('--checkpoint', type=str, default='checkpoint.pt', help='where to save each epoch')
    parser.add_argument('--resume', type=str, default='', help='continue from this checkpoint')
    parser.add_argument('--double', action='store_true', help='run in float64')
    parser.add_argument('--init', type=str, default='', help='load the initial weights from this .npz')
    parser.add_argument('--save-init', type=str, default='', help='write the initial weights to this .npz')
    parser.add_argument('--log', type=str, default='', help='write the loss trajectory to this JSON file')
    args = parser.parse_args()
    use_cuda = not args.no_cuda and torch.cuda.is_available()
    use_mps = not args.no_mps and torch.backends.mps.is_available()

    torch.manual_seed(args.seed)

    if use_cuda:
        device = torch.device("cuda")
    elif use_mps:
        device = torch.device("mps")
    else:
        device = torch.device("cpu")

    train_kwargs = {'batch_size': args.batch_size, 'shuffle': not args.no_shuffle}
    test_kwargs = {'batch_size': args.test_batch_size}
    if use_cuda:
        cuda_kwargs = {'num_workers': 1, 'pin_memory': True}
        train_kwargs.update(cuda_kwargs)
        test_kwargs.update(cuda_kwargs)

    dtype = torch.float64 if args.double else torch.float32
    x, y = make_data(args.train_size + args.test_size, args.length, args.features, args.classes, seed=3)
    x = torch.from_numpy(x).to(dtype)
    y = torch.from_numpy(y)
    train_set = TensorDataset(x[:args.train_size], y[:args.train_size])
    test_set = TensorDataset(x[args.train_size:], y[args.train_size:])
    train_loader = DataLoader(train_set, **train_kwargs)
    test_loader = DataLoader(test_set, **test_kwargs)

    model = Net(args.features, args.hidden, args.classes, args.rnn, tuple(args.dropout)).to(device)
    if args.double:
        model = model.double()
    if args.init:
        arrays = np.load(args.init)
        model.load_state_dict({name: torch.from_numpy(arrays[name]) for name in arrays.files})
    if args.save_init:
        np.savez(args.save_init, **{name: t.detach().cpu().numpy() for name, t in model.state_dict().items()})
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)

    start_epoch = 1
    if args.resume:
        checkpoint = torch.load(args.resume)
        model.load_state_dict(checkpoint['model'])
        optimizer.load_state_dict(checkpoint['optimizer'])
        scheduler.load_state_dict(checkpoint['scheduler'])
        start_epoch = checkpoint['epoch'] + 1
        print('Resumed from {} at epoch {}'.format(args.resume, start_epoch))

    losses = {'train': [], 'test': [], 'accuracy': [], 'lr': []}
    for epoch in range(start_epoch, args.epochs + 1):
        losses['lr'].append(optimizer.param_groups[0]['lr'])
        train(args, model, device, train_loader, optimizer, epoch, losses)
        test(args, model, device, test_loader, losses)
        scheduler.step()
        torch.save({'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                    'scheduler': scheduler.state_dict(), 'epoch': epoch}, args.checkpoint)

    if args.log:
        with open(args.log, 'w') as f:
            json.dump(losses, f)


if __name__ == '__main__':
    main()
