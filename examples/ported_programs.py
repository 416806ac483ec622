"""Four well-known PyTorch programs, ported by changing only the import.

Each program below is written against a framework module named `torch`, as the original is;
pass it gradflow (`import gradflow as torch`) or PyTorch itself. They follow pytorch/examples:

- time_sequence_prediction: sine waves predicted by two LSTMCells, trained with L-BFGS;
- word_language_model: a word-level language model, as an LSTM (RNNModel) or a
  Transformer encoder with a causal mask (TransformerModel), trained with plain SGD and
  gradient clipping;
- super_resolution: convolutions ending in a pixel shuffle, trained with Adam on MSE;
- siamese_network: a ResNet whose first layer is replaced by a one-channel conv and whose
  classifier is cut off with list(children())[:-1], trained with Adadelta and StepLR on BCE.

Their data is generated (sine waves, random tokens, random images), and each is shrunk to run
in seconds on two cores. Where the original calls something gradflow lacks, the port says so
at that line. `python examples/ported_programs.py` trains each with gradflow, and with
PyTorch from the same weights when it is installed, and prints both losses.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np


# ---------------------------------------------------------------- time_sequence_prediction
def sequence_model(torch, hidden: int = 10):
    nn = torch.nn

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = nn.LSTMCell(1, hidden)
            self.lstm2 = nn.LSTMCell(hidden, hidden)
            self.linear = nn.Linear(hidden, 1)

        def forward(self, input, future=0):
            outputs = []
            h_t = torch.zeros(input.size(0), hidden, dtype=torch.double)
            c_t = torch.zeros(input.size(0), hidden, dtype=torch.double)
            h_t2 = torch.zeros(input.size(0), hidden, dtype=torch.double)
            c_t2 = torch.zeros(input.size(0), hidden, dtype=torch.double)
            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            for _ in range(future):  # if we should predict the future
                h_t, c_t = self.lstm1(output, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                output = self.linear(h_t2)
                outputs += [output]
            return torch.cat(outputs, dim=1)

    return Sequence().double()


def sine_waves(n: int = 6, length: int = 16, period: int = 20) -> np.ndarray:
    rng = np.random.default_rng(2)
    x = np.arange(length) + rng.integers(-4 * period, 4 * period, n).reshape(n, 1)
    return np.sin(x / period).astype(np.float64)


def train_sequence(torch, seq, steps: int = 2) -> List[float]:
    """Training losses of each L-BFGS step, then the test loss with 5 future steps."""
    data = sine_waves()
    input, target = torch.from_numpy(data[3:, :-1]), torch.from_numpy(data[3:, 1:])
    test_input, test_target = torch.from_numpy(data[:3, :-1]), torch.from_numpy(data[:3, 1:])
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.LBFGS(seq.parameters(), lr=0.8)
    losses = []
    for _ in range(steps):
        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            loss.backward()
            return loss
        losses.append(optimizer.step(closure).item())
    with torch.no_grad():
        future = 5
        pred = seq(test_input, future=future)
        losses.append(criterion(pred[:, :-future], test_target).item())
    return losses


# ---------------------------------------------------------------- word_language_model
def rnn_model(torch, ntoken: int = 20, ninp: int = 8, nhid: int = 12, nlayers: int = 2,
              dropout: float = 0.0):
    nn = torch.nn
    F = torch.nn.functional

    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.ntoken = ntoken
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(ntoken, ninp)
            self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
            self.decoder = nn.Linear(nhid, ntoken)
            self.init_weights()
            self.nhid, self.nlayers = nhid, nlayers

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.encoder.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, input, hidden):
            emb = self.drop(self.encoder(input))
            output, hidden = self.rnn(emb, hidden)
            output = self.drop(output)
            decoded = self.decoder(output)
            decoded = decoded.view(-1, self.ntoken)
            return F.log_softmax(decoded, dim=1), hidden

        def init_hidden(self, bsz):
            weight = next(self.parameters())
            # the original calls weight.new_zeros, which gradflow does not have yet
            return (torch.zeros(self.nlayers, bsz, self.nhid, dtype=weight.dtype),
                    torch.zeros(self.nlayers, bsz, self.nhid, dtype=weight.dtype))

    return RNNModel().double()


def transformer_model(torch, ntoken: int = 20, ninp: int = 8, nhead: int = 2, nhid: int = 16,
                      nlayers: int = 2, dropout: float = 0.0):
    nn = torch.nn
    F = torch.nn.functional

    class PositionalEncoding(nn.Module):
        def __init__(self, d_model, dropout=0.1, max_len=5000):
            super().__init__()
            self.dropout = nn.Dropout(p=dropout)
            pe = torch.zeros(max_len, d_model)
            position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
            div_term = torch.exp(torch.arange(0, d_model, 2).float()
                                 * (-math.log(10000.0) / d_model))
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            pe = pe.unsqueeze(0).transpose(0, 1)
            self.register_buffer("pe", pe)

        def forward(self, x):
            x = x + self.pe[:x.size(0), :]
            return self.dropout(x)

    class TransformerModel(nn.Transformer):
        def __init__(self):
            # the original leaves dropout at nn.Transformer's default (0.1) here
            super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                             num_encoder_layers=nlayers, dropout=dropout)
            self.model_type = "Transformer"
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout)
            self.input_emb = nn.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = nn.Linear(ninp, ntoken)
            self.init_weights()

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, src, has_mask=True):
            if has_mask:
                # the original builds torch.log(torch.tril(torch.ones(sz, sz))): the same mask
                if self.src_mask is None or self.src_mask.size(0) != len(src):
                    self.src_mask = nn.Transformer.generate_square_subsequent_mask(
                        len(src), dtype=torch.double)
            else:
                self.src_mask = None
            src = self.input_emb(src) * math.sqrt(self.ninp)
            src = self.pos_encoder(src)
            output = self.encoder(src, mask=self.src_mask)
            output = self.decoder(output)
            return F.log_softmax(output, dim=-1)

    return TransformerModel().double()


def _batchify(torch, data: np.ndarray, bsz: int):
    nbatch = len(data) // bsz
    return torch.from_numpy(data[:nbatch * bsz].reshape(bsz, -1).T.copy())


def train_language_model(torch, model, epochs: int = 2, bptt: int = 6,
                         lr: float = 2.0) -> List[float]:
    """The mean training loss of each epoch over a random corpus of 20 tokens."""
    corpus = np.random.default_rng(3).integers(0, 20, 160)
    train_data = _batchify(torch, corpus, 4)
    criterion = torch.nn.NLLLoss()
    is_transformer = getattr(model, "model_type", "") == "Transformer"

    def repackage_hidden(h):
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(repackage_hidden(v) for v in h)

    losses = []
    for _ in range(epochs):
        model.train()
        total, batches = 0.0, 0
        if not is_transformer:
            hidden = model.init_hidden(4)
        for i in range(0, train_data.size(0) - 1, bptt):
            seq_len = min(bptt, len(train_data) - 1 - i)
            data, targets = train_data[i:i + seq_len], train_data[i + 1:i + 1 + seq_len].view(-1)
            model.zero_grad()
            if is_transformer:
                output = model(data).view(-1, 20)
            else:
                hidden = repackage_hidden(hidden)
                output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            total, batches = total + loss.item(), batches + 1
        losses.append(total / batches)
    return losses


# ---------------------------------------------------------------- super_resolution
def super_resolution_net(torch, upscale_factor: int = 2, width: int = 16):
    nn = torch.nn
    init = torch.nn.init

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()
            self.conv1 = nn.Conv2d(1, width, (5, 5), (1, 1), (2, 2))
            self.conv2 = nn.Conv2d(width, width, (3, 3), (1, 1), (1, 1))
            self.conv3 = nn.Conv2d(width, width // 2, (3, 3), (1, 1), (1, 1))
            self.conv4 = nn.Conv2d(width // 2, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
            self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
            self._initialize_weights()

        def forward(self, x):
            x = self.relu(self.conv1(x))
            x = self.relu(self.conv2(x))
            x = self.relu(self.conv3(x))
            return self.pixel_shuffle(self.conv4(x))

        def _initialize_weights(self):
            init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
            init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
            init.orthogonal_(self.conv3.weight, init.calculate_gain("relu"))
            init.orthogonal_(self.conv4.weight)

    return Net().double()


def train_super_resolution(torch, model, steps: int = 4) -> List[float]:
    """MSE of each Adam step, upscaling 8x8 images to 16x16, then the test PSNR."""
    rng = np.random.default_rng(4)
    high = rng.random((6, 1, 16, 16))
    low = high.reshape(6, 1, 8, 2, 8, 2).mean(axis=(3, 5))  # 2x2 box downsampling
    input, target = torch.from_numpy(low), torch.from_numpy(high)
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = criterion(model(input), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        mse = criterion(model(input), target)
        losses.append(10 * math.log10(1 / mse.item()))
    return losses


# ---------------------------------------------------------------- siamese_network
def _resnet(torch, widths: Tuple[int, int] = (64, 128)):
    """A two-stage ResNet with torchvision's resnet18 layout (conv1, bn1, relu, maxpool,
    layer1, layer2, avgpool, fc), torchvision itself being outside gradflow."""
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride,
                                                          bias=False), nn.BatchNorm2d(planes))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = BasicBlock(widths[0], widths[0])
            self.layer2 = BasicBlock(widths[0], widths[1], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(widths[1], 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.avgpool(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(x, 1))

    return ResNet()


def siamese_network(torch):
    nn = torch.nn

    class SiameseNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.resnet = _resnet(torch)
            # over-write the first conv layer to read MNIST's one-channel images
            self.resnet.conv1 = nn.Conv2d(1, 64, kernel_size=(7, 7), stride=(2, 2),
                                          padding=(3, 3), bias=False)
            self.fc_in_features = self.resnet.fc.in_features
            # remove the last layer of resnet18 (linear layer which is before avgpool layer)
            self.resnet = torch.nn.Sequential(*(list(self.resnet.children())[:-1]))
            self.fc = nn.Sequential(nn.Linear(self.fc_in_features * 2, 256),
                                    nn.ReLU(inplace=True), nn.Linear(256, 1))
            self.sigmoid = nn.Sigmoid()
            self.resnet.apply(self.init_weights)
            self.fc.apply(self.init_weights)

        def init_weights(self, m):
            if isinstance(m, nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                m.bias.data.fill_(0.01)

        def forward_once(self, x):
            output = self.resnet(x)
            return output.view(output.size()[0], -1)

        def forward(self, input1, input2):
            output = torch.cat((self.forward_once(input1), self.forward_once(input2)), 1)
            return self.sigmoid(self.fc(output))

    return SiameseNetwork().double()


def train_siamese(torch, model, epochs: int = 2, steps: int = 2) -> List[float]:
    """BCE of each Adadelta step on pairs of random 28x28 images, StepLR after each epoch."""
    rng = np.random.default_rng(5)
    images = [torch.from_numpy(rng.random((4, 1, 28, 28))) for _ in range(2 * steps)]
    targets = [torch.from_numpy(rng.integers(0, 2, (4, 1)).astype(np.float64))
               for _ in range(steps)]
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    criterion = torch.nn.BCELoss()
    losses = []
    for _ in range(epochs):
        model.train()
        for i in range(steps):
            optimizer.zero_grad()
            outputs = model(images[2 * i], images[2 * i + 1]).squeeze()
            loss = criterion(outputs, targets[i].squeeze())
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
    return losses


# ---------------------------------------------------------------- running them
PROGRAMS: Dict[str, Tuple[Callable, Callable]] = {
    "time_sequence_prediction": (sequence_model, train_sequence),
    "word_language_model_lstm": (rnn_model, train_language_model),
    "word_language_model_transformer": (transformer_model, train_language_model),
    "super_resolution": (super_resolution_net, train_super_resolution),
    "siamese_network": (siamese_network, train_siamese),
}


def build(name: str, torch, state: Optional[Dict[str, np.ndarray]] = None):
    """Program `name`'s model made with the framework `torch`, holding `state` (a state dict of
    NumPy arrays, e.g. the other framework's initial weights) when given."""
    torch.manual_seed(0)
    model = PROGRAMS[name][0](torch)
    if state is not None:
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    return model


def train(name: str, torch, model) -> List[float]:
    """Train program `name`'s model; its losses (and final test metric)."""
    return PROGRAMS[name][1](torch, model)


def numpy_state(model) -> Dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def main(argv=None) -> Dict[str, List[List[float]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--program", choices=sorted(PROGRAMS), action="append",
                        help="run only these (default: all)")
    args = parser.parse_args(argv)
    import gradflow

    have_torch = importlib.util.find_spec("torch") is not None
    results = {}
    for name in args.program or PROGRAMS:
        theirs: List[float] = []
        if have_torch:
            import torch

            reference = build(name, torch)
            model = build(name, gradflow, numpy_state(reference))
            theirs = train(name, torch, reference)
        else:
            model = build(name, gradflow)
        ours = train(name, gradflow, model)
        results[name] = [ours, theirs]
        print(f"{name}\n  gradflow: {' '.join(f'{x:.6f}' for x in ours)}")
        if theirs:
            print(f"  PyTorch:  {' '.join(f'{x:.6f}' for x in theirs)}")
    return results


if __name__ == "__main__":
    main()
