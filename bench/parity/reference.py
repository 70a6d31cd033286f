"""SimSiam reference in PyTorch for the parity harness (bench/parity/index.ts).

The official recipe (facebookresearch/simsiam: builder.py, main_simsiam.py, loader.py) written
out here with every choice explicit, sized by the engine's preset so the two sides train the
same model on the same folder:

- backbone: torchvision-layout ResNet-18/34 (basic blocks) or ResNet-50 (bottlenecks, stride on the
  3x3) with the width multiplier and the
  CIFAR stem (3x3 stride-1 conv, no max-pool) or the ImageNet stem; convs kaiming_normal
  (fan_out, relu); the last BN of each residual branch starts at gamma = 0 (zero_init_residual);
- projector: (Linear no bias -> BN -> ReLU) x (layers - 1), Linear no bias -> BN(affine=False);
- predictor: Linear(d -> hidden, no bias) -> BN -> ReLU -> Linear(hidden -> d);
- loss: -(cos(p1, z2.detach()) + cos(p2, z1.detach())) / 2, each view its own forward (the
  official code's BN statistics are per view);
- SGD momentum 0.9, weight decay on every parameter, lr = base * batch / 256, cosine set at the
  start of each epoch, predictor at the initial lr (--fix-pred-lr);
- views: RandomResizedCrop(scale 0.2-1, ratio 3/4-4/3), ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8
  in a random order, RandomGrayscale p 0.2, Gaussian blur (sigma 0.1-2) with the preset's p,
  horizontal flip p 0.5, ImageNet mean/std;
- subnormal floats flushed to zero (torch.set_flush_denormal) unless --keep-denormals;
- kNN monitor: eval-mode, l2-normalised backbone features of a deterministic view (shorter side
  resized to the image size, centre crop), k = 200, t = 0.1, weighted votes.

Prints one JSON object per line on stdout: {"type": "eval", "epoch": 0, "knnTop1": ...} before
training, then {"type": "epoch", "epoch": e, "meanLoss", "zStd", "knnTop1", "imagesPerSecond",
"seconds", "viewSeconds", "lr"} after each epoch. imagesPerSecond counts the training loop only
(views made on this thread, forward, backward, step), as the engine's epoch record does;
viewSeconds is the part of it spent making views (the engine makes them on a loader thread).
"""

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff')


# ---------------------------------------------------------------- data


def class_folders(root):
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith('.'))


def read_split(folder, classes, keep_side):
    """Decoded RGB images as uint8 tensors (3, H, W), downscaled so the shorter side is at most
    keep_side (the engine's cache does the same for large photos), and their class indices."""
    images, labels = [], []
    for label, name in enumerate(classes):
        directory = os.path.join(folder, name)
        for file in sorted(os.listdir(directory)):
            if not file.lower().endswith(IMAGE_EXTENSIONS):
                continue
            with Image.open(os.path.join(directory, file)) as image:
                image = image.convert('RGB')
                short = min(image.size)
                if short > keep_side:
                    scale = keep_side / short
                    image = image.resize((max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))), Image.BILINEAR)
                images.append(torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous())
                labels.append(label)
    return images, torch.tensor(labels, dtype=torch.long)


def load_folder(root, image_size):
    """The folder's train/ and test/ (or val/) splits, like the engine; the harness only passes such folders."""
    test_name = 'test' if os.path.isdir(os.path.join(root, 'test')) else 'val'
    train_dir, test_dir = os.path.join(root, 'train'), os.path.join(root, test_name)
    if not os.path.isdir(train_dir) or not os.path.isdir(test_dir):
        sys.exit(f'{root}: needs train/ and test/ (or val/) folders of class subfolders for the kNN monitor')
    classes = class_folders(train_dir)
    keep_side = max(image_size * 2, 64)
    train_images, train_labels = read_split(train_dir, classes, keep_side)
    test_images, test_labels = read_split(test_dir, classes, keep_side)
    return classes, train_images, train_labels, test_images, test_labels


# ---------------------------------------------------------------- augmentation


def resize(image, height, width):
    """Bilinear, antialiased when shrinking (PIL-like), on a float (3, H, W) image."""
    return F.interpolate(image.unsqueeze(0), size=(height, width), mode='bilinear', align_corners=False,
                         antialias=True).squeeze(0)


def random_resized_crop_box(rng, height, width, scale_min, scale_max):
    """torchvision's RandomResizedCrop.get_params: 10 tries, then a centre crop clamped to the ratio range."""
    area = height * width
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target_area = area * rng.uniform(scale_min, scale_max)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = rng.randint(0, height - h)
            left = rng.randint(0, width - w)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < 3 / 4:
        w, h = width, int(round(width / (3 / 4)))
    elif in_ratio > 4 / 3:
        h, w = height, int(round(height * (4 / 3)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def grayscale(image):
    return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]).unsqueeze(0)


def blend(image, other, factor):
    return (factor * image + (1 - factor) * other).clamp(0, 1)


def rgb_to_hsv(image):
    r, g, b = image[0], image[1], image[2]
    maxc, _ = image.max(0)
    minc, _ = image.min(0)
    value = maxc
    delta = maxc - minc
    saturation = delta / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    safe = torch.where(delta == 0, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(delta == 0, torch.zeros_like(hue), (hue / 6.0) % 1.0)
    return hue, saturation, value


def hsv_to_rgb(hue, saturation, value):
    i = torch.floor(hue * 6.0)
    f = hue * 6.0 - i
    i = i.long() % 6
    p = value * (1 - saturation)
    q = value * (1 - saturation * f)
    t = value * (1 - saturation * (1 - f))
    r = torch.stack([value, q, p, p, t, value])
    g = torch.stack([t, value, value, q, p, p])
    b = torch.stack([p, p, t, value, value, q])
    index = i.unsqueeze(0)
    return torch.cat([r.gather(0, index), g.gather(0, index), b.gather(0, index)], 0)


def color_jitter(rng, image, strength):
    """torchvision ColorJitter(0.4s, 0.4s, 0.4s, 0.1s): factors uniform, the four steps in a random order, clamped after each."""
    b = c = s = 0.4 * strength
    h = 0.1 * strength
    steps = [0, 1, 2, 3]
    rng.shuffle(steps)
    for step in steps:
        if step == 0:
            image = (image * rng.uniform(max(0, 1 - b), 1 + b)).clamp(0, 1)
        elif step == 1:
            image = blend(image, grayscale(image).mean(), rng.uniform(max(0, 1 - c), 1 + c))
        elif step == 2:
            image = blend(image, grayscale(image), rng.uniform(max(0, 1 - s), 1 + s))
        else:
            shift = rng.uniform(-h, h)
            hue, saturation, value = rgb_to_hsv(image)
            image = hsv_to_rgb((hue + shift) % 1.0, saturation, value).clamp(0, 1)
    return image


def gaussian_blur(rng, image):
    """The official loader's GaussianBlur: sigma uniform in [0.1, 2] pixels, kernel to +-3 sigma."""
    sigma = rng.uniform(0.1, 2.0)
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(image.unsqueeze(0), (radius, radius, radius, radius), mode='reflect' if radius < min(image.shape[1:]) else 'replicate')
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3).squeeze(0)


def normalise(image):
    return (image - IMAGENET_MEAN) / IMAGENET_STD


def make_view(rng, image_u8, cfg):
    image = image_u8.float() / 255.0
    height, width = image.shape[1:]
    top, left, h, w = random_resized_crop_box(rng, height, width, cfg['cropScaleMin'], cfg['cropScaleMax'])
    image = resize(image[:, top:top + h, left:left + w], cfg['imageSize'], cfg['imageSize']).clamp(0, 1)
    if rng.random() < cfg['colorJitterP']:
        image = color_jitter(rng, image, cfg['colorJitter'])
    if rng.random() < cfg['grayscaleP']:
        image = grayscale(image).expand(3, -1, -1)
    if rng.random() < cfg['blurP']:
        image = gaussian_blur(rng, image)
    if rng.random() < cfg['flipP']:
        image = image.flip(2)
    return normalise(image)


def torchvision_views(cfg):
    """--torchvision-views: the official loader itself (main_simsiam.py's augmentation, torchvision
    transforms on PIL images, PIL's Gaussian blur), in place of make_view's own implementation. Its
    randomness comes from Python's and torch's global generators, both seeded with --seed."""
    from PIL import ImageFilter
    from torchvision import transforms

    class GaussianBlur:
        def __call__(self, image):
            return image.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))

    s = cfg['colorJitter']
    augment = transforms.Compose([
        transforms.RandomResizedCrop(cfg['imageSize'], scale=(cfg['cropScaleMin'], cfg['cropScaleMax'])),
        transforms.RandomApply([transforms.ColorJitter(0.4 * s, 0.4 * s, 0.4 * s, 0.1 * s)], p=cfg['colorJitterP']),
        transforms.RandomGrayscale(p=cfg['grayscaleP']),
        transforms.RandomApply([GaussianBlur()], p=cfg['blurP']),
        transforms.RandomHorizontalFlip(p=cfg['flipP']),
        transforms.ToTensor(),
        transforms.Normalize(mean=IMAGENET_MEAN.flatten().tolist(), std=IMAGENET_STD.flatten().tolist()),
    ])
    return lambda rng, image_u8, cfg: augment(Image.fromarray(image_u8.permute(1, 2, 0).numpy()))


def eval_view(image_u8, size):
    """Shorter side to `size`, centre square: the engine's deterministic view for the kNN monitor."""
    image = image_u8.float() / 255.0
    height, width = image.shape[1:]
    scale = size / min(height, width)
    h, w = max(size, round(height * scale)), max(size, round(width * scale))
    image = resize(image, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    return normalise(image[:, top:top + size, left:left + size].clamp(0, 1))


# ---------------------------------------------------------------- model


# Switches that move one detail of this reference to what the engine (tfjs) does, so the harness
# can measure each difference on its own (--reference-args); all off = the official recipe.
VARIANTS = {'tf_same_padding': False, 'conv_init': 'normal', 'stop_gradient': True}


class TfSamePad(nn.Module):
    """TensorFlow's padding='same': total pad max((ceil(n/s)-1)*s + k - n, 0), the odd pixel
    at the bottom/right. For a 3x3 stride-2 conv on an even size that is (0, 1), where PyTorch
    pads (1, 1): the conv's samples sit one pixel off the 1x1 shortcut's."""

    def __init__(self, kernel, stride, value=0.0):
        super().__init__()
        self.kernel, self.stride, self.value = kernel, stride, value

    def forward(self, x):
        pads = []
        for size in (x.shape[3], x.shape[2]):
            total = max((math.ceil(size / self.stride) - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads, value=self.value)


def conv(in_channels, out_channels, kernel, stride):
    if VARIANTS['tf_same_padding']:
        return nn.Sequential(TfSamePad(kernel, stride), nn.Conv2d(in_channels, out_channels, kernel, stride, bias=False))
    return nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False)


def init_conv(weight):
    """kaiming_normal_(fan_out, relu) as torchvision; 'truncated' = tfjs varianceScaling 'normal':
    the same std, cut at +-2 std and not rescaled, so the weights' std is 0.88x He's."""
    if VARIANTS['conv_init'] == 'truncated':
        fan_out = weight.shape[0] * weight[0][0].numel()
        std = math.sqrt(2.0 / fan_out)
        nn.init.trunc_normal_(weight, 0.0, std, -2 * std, 2 * std)
    else:
        nn.init.kaiming_normal_(weight, mode='fan_out', nonlinearity='relu')


class BasicBlock(nn.Module):
    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = conv(in_channels, channels, 3, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv(channels, channels, 3, 1)
        self.bn2 = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn2.weight)  # zero_init_residual: each block starts as the identity
        self.shortcut = None
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(conv(in_channels, channels, 1, stride), nn.BatchNorm2d(channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck (stride on the 3x3), 4x expansion."""

    def __init__(self, in_channels, channels, stride):
        super().__init__()
        out_channels = channels * 4
        self.conv1 = conv(in_channels, channels, 1, 1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv(channels, channels, 3, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv(channels, out_channels, 1, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        nn.init.zeros_(self.bn3.weight)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(conv(in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


BLOCKS = {'resnet18': [2, 2, 2, 2], 'resnet34': [3, 4, 6, 3], 'resnet50': [3, 4, 6, 3]}


class ResNet(nn.Module):
    def __init__(self, depth, width, stem):
        super().__init__()
        widths = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
        if stem == 'cifar':
            self.stem = nn.Sequential(conv(3, widths[0], 3, 1), nn.BatchNorm2d(widths[0]), nn.ReLU())
        else:
            pool = (nn.Sequential(TfSamePad(3, 2, -math.inf), nn.MaxPool2d(3, 2)) if VARIANTS['tf_same_padding']
                    else nn.MaxPool2d(3, 2, 1))
            self.stem = nn.Sequential(conv(3, widths[0], 7, 2), nn.BatchNorm2d(widths[0]), nn.ReLU(), pool)
        layers, in_channels = [], widths[0]
        block, expansion = (Bottleneck, 4) if depth == 'resnet50' else (BasicBlock, 1)
        for stage, (channels, count) in enumerate(zip(widths, BLOCKS[depth])):
            for i in range(count):
                layers.append(block(in_channels, channels, 2 if stage > 0 and i == 0 else 1))
                in_channels = channels * expansion
        self.layers = nn.Sequential(*layers)
        self.features = in_channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                init_conv(module.weight)

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1)


class SimSiam(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg['backbone'] not in BLOCKS:
            sys.exit(f"reference.py builds {', '.join(BLOCKS)}, not {cfg['backbone']}")
        self.backbone = ResNet(cfg['backbone'], cfg['widthMultiplier'], cfg['stem'])
        dim, hidden = cfg['projectorDim'], cfg['predictorHiddenDim']
        layers, width = [], self.backbone.features
        for _ in range(cfg['projectorLayers'] - 1):
            layers += [nn.Linear(width, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU()]
            width = dim
        layers += [nn.Linear(width, dim, bias=False), nn.BatchNorm1d(dim, affine=False)]
        self.projector = nn.Sequential(*layers)
        self.predictor = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                       nn.Linear(hidden, dim))

    def forward(self, x1, x2):
        z1 = self.projector(self.backbone(x1))
        z2 = self.projector(self.backbone(x2))
        if not VARIANTS['stop_gradient']:  # a deviation to measure, never the recipe: SimSiam collapses without it (paper section 4.1)
            return self.predictor(z1), self.predictor(z2), z1, z2
        return self.predictor(z1), self.predictor(z2), z1.detach(), z2.detach()


# ---------------------------------------------------------------- monitors


def collapse_std(z):
    """Std over the batch (population, as tf.moments) of l2-normalised z, averaged over channels."""
    return F.normalize(z, dim=1).std(0, unbiased=False).mean().item()


@torch.no_grad()
def features(model, views, batch=256):
    model.eval()
    out = [F.normalize(model.backbone(torch.stack(views[i:i + batch])), dim=1) for i in range(0, len(views), batch)]
    model.train()
    return torch.cat(out)


def knn_top1(bank, bank_labels, queries, query_labels, classes, k, t):
    k = min(k, bank.shape[0])
    values, indices = (queries @ bank.T).topk(k, dim=1)
    weights = (values / t).exp()
    votes = torch.zeros(queries.shape[0], classes).scatter_add_(1, bank_labels[indices], weights)
    return (votes.argmax(1) == query_labels).float().mean().item()


# ---------------------------------------------------------------- training


def lr_at(cfg, epoch):
    """main_simsiam.adjust_learning_rate: cosine over epochs, set at each epoch's start (epoch from 0)."""
    initial = cfg['baseLr'] * cfg['batchSize'] / 256
    return initial, initial * 0.5 * (1 + math.cos(math.pi * epoch / cfg['epochs']))


def emit(record):
    print(json.dumps(record), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('folder')
    parser.add_argument('--config', required=True, help="JSON of the engine's resolved TrainConfig")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=0, help='torch intra-op threads (0: torch default)')
    parser.add_argument('--keep-denormals', action='store_true',
                        help='compute with subnormal floats (x86 default); by default they are flushed to zero, see below')
    parser.add_argument('--tf-same-padding', action='store_true', help="pad convs and the max-pool as TensorFlow's 'same' does")
    parser.add_argument('--conv-init', choices=['normal', 'truncated'], default='normal',
                        help='conv weights: He normal (torchvision) or truncated at 2 std without rescaling (tfjs)')
    parser.add_argument('--no-stop-gradient', action='store_true', help='a deviation to measure: gradients also flow through z')
    parser.add_argument('--torchvision-views', action='store_true',
                        help="make the views with torchvision's transforms, as the official loader does (needs torchvision)")
    args = parser.parse_args()
    VARIANTS.update(tf_same_padding=args.tf_same_padding, conv_init=args.conv_init, stop_gradient=not args.no_stop_gradient)
    with open(args.config) as f:
        cfg = json.load(f)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    # The zero-initialised residual BNs make some early gradients subnormal; on x86 each subnormal
    # operation costs ~100x, and a few steps of the first epoch took 4 s instead of 0.3 s on the
    # bundled sample. Flushing them changes no printed figure (loss equal to 4 digits) and is what
    # a GPU does anyway, so the speed compared is PyTorch's ordinary speed.
    flushed = False if args.keep_denormals else torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    rng = random.Random(args.seed)
    view = torchvision_views(cfg) if args.torchvision_views else make_view

    classes, train_images, train_labels, test_images, test_labels = load_folder(args.folder, cfg['imageSize'])
    size = cfg['imageSize']
    bank_views = [eval_view(image, size) for image in train_images]
    query_views = [eval_view(image, size) for image in test_images]

    def knn(model):
        return knn_top1(features(model, bank_views), train_labels, features(model, query_views), test_labels,
                        len(classes), cfg['knnK'], cfg['knnTemperature'])

    model = SimSiam(cfg)
    predictor_ids = {id(p) for p in model.predictor.parameters()}
    groups = [
        {'params': [p for p in model.parameters() if id(p) not in predictor_ids], 'fix_lr': False},
        {'params': list(model.predictor.parameters()), 'fix_lr': cfg['fixedPredictorLr']},
    ]
    initial_lr = cfg['baseLr'] * cfg['batchSize'] / 256
    optimizer = torch.optim.SGD(groups, lr=initial_lr, momentum=cfg['momentum'], weight_decay=cfg['weightDecay'])
    emit({'type': 'eval', 'epoch': 0, 'knnTop1': knn(model), 'threads': torch.get_num_threads(), 'torch': torch.__version__,
          'flushDenormal': flushed, 'variants': VARIANTS, 'torchvisionViews': args.torchvision_views})

    batch = cfg['batchSize']
    steps = len(train_images) // batch  # drop_last=True
    if steps == 0:
        sys.exit(f'{args.folder}: {len(train_images)} training images, fewer than one batch of {batch}')
    model.train()
    for epoch in range(cfg['epochs']):
        initial, current = lr_at(cfg, epoch)
        for group in optimizer.param_groups:
            group['lr'] = initial if group['fix_lr'] else current
        order = list(range(len(train_images)))
        rng.shuffle(order)
        losses, stds = [], []
        view_seconds = 0.0
        start = time.perf_counter()
        for step in range(steps):
            chosen = order[step * batch:(step + 1) * batch]
            views_start = time.perf_counter()
            x1 = torch.stack([view(rng, train_images[i], cfg) for i in chosen])
            x2 = torch.stack([view(rng, train_images[i], cfg) for i in chosen])
            view_seconds += time.perf_counter() - views_start
            p1, p2, z1, z2 = model(x1, x2)
            loss = -(F.cosine_similarity(p1, z2, dim=1).mean() + F.cosine_similarity(p2, z1, dim=1).mean()) * 0.5
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            stds.append(collapse_std(z1))
            if os.environ.get('PARITY_STEP_TIMES'):
                print(f'epoch {epoch + 1} step {step + 1}: {time.perf_counter() - start:.2f} s', file=sys.stderr, flush=True)
        seconds = time.perf_counter() - start
        emit({'type': 'epoch', 'epoch': epoch + 1, 'meanLoss': sum(losses) / steps, 'zStd': sum(stds) / steps,
              'knnTop1': knn(model), 'imagesPerSecond': steps * batch / seconds, 'seconds': seconds, 'viewSeconds': view_seconds,
              'lr': current, 'predictorLr': optimizer.param_groups[1]['lr']})


if __name__ == '__main__':
    main()
