#!/usr/bin/env python3
"""PyTorch (Python) definitions of the models dist_train builds in C++, used as the reference:
the seed's ResNet exactly as the seed script writes it, He et al.'s CIFAR ResNets with
option-A (zero-padded identity) shortcuts, and Page's fast ResNet-9 (DAWNBench).

    reference_models.py names MODEL          -> JSON {name: shape} of the state dict, in order
    reference_models.py load MODEL FILE      -> loads FILE["model"] strictly, prints a checksum
    reference_models.py save MODEL FILE SEED [FORM] -> torch.save of a new model's state dict:
        FORM dict (default) {"model": dict(state_dict)}, wrapped {"model": state_dict} or bare
        state_dict (both collections.OrderedDict with _metadata, as PyTorch users save them)
    reference_models.py train_seed MODEL DATA FILE STEPS SEED -> trains as the seed's own loop
        would (ToTensor() input, Adam 1e-3, batch 30; no augmentation, for speed) on the CIFAR-10
        binaries in DATA, and saves torch.save(model.state_dict()) to FILE
    reference_models.py bf16grads MODEL FILE OUT -> loads FILE["model"], one training-mode
        forward under torch.autocast("cpu", bfloat16) on the batch of seed 99 (channels_last),
        fp32 cross-entropy, backward; saves {"model": state_dict with each parameter replaced by
        its gradient} to OUT
"""
import collections, json, sys
import torch, torch.nn as nn
import torch.nn.functional as F


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class ResidualBlock(nn.Module):  # the seed's block, attribute names as in the seed
    def __init__(self, cin, cout, stride=1, downsample=None, option_a=False):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample
        self.pad = (cout - cin) if option_a and (stride != 1 or cin != cout) else 0
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        elif self.pad or self.stride != 1:
            residual = F.pad(x[:, :, ::self.stride, ::self.stride],
                             (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        else:
            residual = x
        return self.relu(out + residual)


class ResNet(nn.Module):
    def __init__(self, blocks=2, option_a=False, num_classes=10):
        super().__init__()
        self.in_channels, self.option_a = 16, option_a
        self.conv = conv3x3(3, 16)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self.make_layer(16, blocks)
        self.layer2 = self.make_layer(32, blocks, 2)
        self.layer3 = self.make_layer(64, blocks, 2)
        self.avg_pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)

    def make_layer(self, cout, blocks, stride=1):
        downsample = None
        if (stride != 1 or self.in_channels != cout) and not self.option_a:
            downsample = nn.Sequential(conv3x3(self.in_channels, cout, stride), nn.BatchNorm2d(cout))
        layers = [ResidualBlock(self.in_channels, cout, stride, downsample, self.option_a)]
        self.in_channels = cout
        layers += [ResidualBlock(cout, cout) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.relu(self.bn(self.conv(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(self.avg_pool(out).flatten(1))


class ConvBn(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = conv3x3(cin, cout)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Stage(nn.Module):  # conv_bn, pool, and optionally Residual(conv_bn, conv_bn), as in Page's code
    def __init__(self, cin, cout, residual):
        super().__init__()
        self.conv = conv3x3(cin, cout)
        self.bn = nn.BatchNorm2d(cout)
        if residual:
            self.res1, self.res2 = ConvBn(cout, cout), ConvBn(cout, cout)
        self.residual = residual

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return out + self.res2(self.res1(out)) if self.residual else out


class ResNet9(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.prep = ConvBn(3, 64)
        self.layer1 = Stage(64, 128, True)
        self.layer2 = Stage(128, 256, False)
        self.layer3 = Stage(256, 512, True)
        self.fc = nn.Linear(512, num_classes, bias=False)

    def forward(self, x):
        out = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.fc(F.max_pool2d(out, 4).flatten(1)) * 0.125


BLOCKS = {"resnet14": 2, "resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}


def make(name):
    if name == "resnet9":
        return ResNet9()
    return ResNet(BLOCKS[name], option_a=name != "resnet14")


def main():
    cmd, name = sys.argv[1], sys.argv[2]
    if cmd == "names":
        print(json.dumps([[k, list(v.shape)] for k, v in make(name).state_dict().items()]))
    elif cmd == "load":
        ckpt = torch.load(sys.argv[3], map_location="cpu")
        model = make(name)
        model.load_state_dict(ckpt["model"], strict=True)
        model.eval()
        torch.manual_seed(0)
        x = torch.randn(4, 3, 32, 32)
        print(json.dumps({"keys": len(ckpt["model"]), "logits": model(x).tolist(),
                          "param_sum": float(sum(p.double().sum() for p in model.parameters()))}))
    elif cmd == "bf16grads":
        model = make(name)
        model.load_state_dict(torch.load(sys.argv[3], map_location="cpu")["model"], strict=True)
        model = model.to(memory_format=torch.channels_last).train()
        gen = torch.Generator().manual_seed(99)
        x = torch.randn(24, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (24,), generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        sd = dict(model.state_dict())
        for k, p in model.named_parameters():
            sd[k] = p.grad.contiguous()
        torch.save({"model": sd}, sys.argv[4])
        print(json.dumps({"logits_dtype": str(logits.dtype)}))
    elif cmd == "save":
        torch.manual_seed(int(sys.argv[4]))
        model = make(name)
        # Non-trivial BatchNorm parameters and buffers, so that loading them is checked too: the
        # affine ones drawn at random, the running statistics as training leaves them (arbitrary
        # ones would zero most ReLUs and leave logits that hardly depend on the input).
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.2, 0.2)
            for _ in range(30):
                model(torch.randn(16, 3, 32, 32))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.num_batches_tracked.fill_(7)
        sd = model.state_dict()
        form = sys.argv[5] if len(sys.argv) > 5 else "dict"
        torch.save({"dict": {"model": dict(sd)}, "wrapped": {"model": sd}, "bare": sd}[form], sys.argv[3])
        model.eval()
        torch.manual_seed(0)
        x = torch.randn(4, 3, 32, 32)
        print(json.dumps({"logits": model(x).tolist()}))
    elif cmd == "train_seed":
        import numpy as np, os
        data, out, steps = sys.argv[3], sys.argv[4], int(sys.argv[5])
        torch.manual_seed(int(sys.argv[6]))
        raw = np.fromfile(os.path.join(data, "data_batch_1.bin"), dtype=np.uint8).reshape(-1, 3073)
        images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy())
        labels = torch.from_numpy(raw[:, 0].astype(np.int64))
        model = make(name)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for step in range(steps):
            i = torch.randint(0, len(labels), (30,))
            opt.zero_grad()
            F.cross_entropy(model(images[i].float() / 255), labels[i]).backward()  # ToTensor()
            opt.step()
        torch.save(model.state_dict(), out)


if __name__ == "__main__":
    main()
