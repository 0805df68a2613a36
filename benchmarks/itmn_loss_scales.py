"""iTMN loss magnitudes: MSE, dMSE and the adversarial regulariser R (Ning et al. 2018, eq. 1-3) on HDR
data, under each candidate reading of eq. 2's scaling, and whether the paper's two statements hold.

  python benchmarks/itmn_loss_scales.py --make_data      # .hdr files + `hdr/reinhard` (512x512) in --root
  for a in 10 1e5; do                                    # two trained runs (demo sizes, ~10 min each on 2 cores)
    python -m lle.main --config=configs/itmn.py:demo --config.data.name=hdr/reinhard \
      --config.data.data_dir=runs/itmn_loss_scales/tfds --config.loss.alpha=$a --workdir=runs/scales_a$a
  done
  python benchmarks/itmn_loss_scales.py --runs=runs/scales_a10,runs/scales_a1e5   # the table

The paper (sec. 4.2) says: "when alpha < 1e3 or lambda > 1e6, the value of the dMSE loss or that of the
adversarial regularizer will be ignorable compared to the MSE loss", and alpha = 1e5, lambda = 1e4 is its
best setting (Table 2), with NoDMSE (alpha = 0) and NoAdvReg worse (Table 1): so alpha * dMSE must be
negligible next to MSE at alpha = 1e3 but not at 1e5 (S1), and |R| negligible next to lambda * MSE at
lambda = 1e6 but not at 1e4 (S2). "Negligible" is read as below 10%. This script measures the three
terms on held-out 512x512 images for: the identity and inverse-Reinhard baselines, the paper-width
networks at initialisation, and the generator (and discriminator) of any trained run folder (a D trained
on smaller crops scores tiles of that size), and prints, per scaling:

  mean      every term a per-element mean (lle's `loss.reduction = "mean"`)
  sum       ||.||_F^2 per image, averaged over the batch (`"sum"`: eq. 2 read literally)
  sum_mean  MSE summed per image, dMSE a per-element mean (a mixed implementation)
  *_linear  the same on linear light (cd/m^2 / 10000, PQ's range) instead of the PQ code the net outputs

The HDR data: the demo photos' synthetic HDR scenes (lle/data/demo) written as Radiance .hdr files and
packaged by the `hdr` builder exactly as a real HDR folder is (512x512, peak 1000 cd/m^2, Reinhard LDR).
"""
import os

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("root", "runs/itmn_loss_scales", "Folder for the .hdr files and the built data set.")
flags.DEFINE_bool("make_data", False, "Write the .hdr files and build `hdr/reinhard` in --root, then exit.")
flags.DEFINE_list("runs", [], "Trained iTMN run folders (their config.json and latest checkpoint).")
flags.DEFINE_integer("images", 3, "Held-out 512x512 images to measure on.")

ALPHAS = (1e3, 1e5, 1e7)
LAMBDAS = (1e2, 1e4, 1e6)
NEGLIGIBLE = 0.1
SCALINGS = ("mean", "sum", "sum_mean", "mean_linear", "sum_linear", "sum_mean_linear")


def data_dir():
  return os.path.join(FLAGS.root, "tfds")


def make_data():
  """Demo photos -> synthetic HDR scenes (cd/m^2) -> .hdr files in train/ and test/ -> `hdr/reinhard`."""
  import cv2
  import numpy as np

  from lle.data import build
  from lle.data.demo import builder as demo

  manual = os.path.join(FLAGS.root, "hdr_files")
  for name in demo.PHOTOS:
    split = "test" if name in demo.TEST_PHOTOS else "train"
    os.makedirs(os.path.join(manual, split), exist_ok=True)
    photo = demo._downscale(demo.load_photo(name))
    for variant in range(1 if split == "test" else demo.TRAIN_VARIANTS):
      hdr = demo.synthesize_hdr(photo, np.random.default_rng(demo._seed(name, variant)))
      path = os.path.join(manual, split, f"{name}_{variant}.hdr")
      if not cv2.imwrite(path, np.ascontiguousarray(hdr[..., ::-1])):
        raise OSError(f"could not write {path}")
  b = build.build("hdr/reinhard", manual, data_dir=data_dir())
  print(build.summary(b))


def terms(pred, target, real_logits=None, fake_logits=None):
  """{scaling: (MSE, dMSE)} and R for one batch; `*_linear` scalings decode PQ to cd/m^2 / 10000."""
  from lle import color, losses
  out = {}
  for space in ("", "_linear"):
    p, t = (pred, target) if not space else (color.pq_decode(pred) / 1e4, color.pq_decode(target) / 1e4)
    mse = {r: float(losses.mse(p, t, reduction=r)) for r in ("mean", "sum")}
    dmse = {r: float(losses.dmse(p, t, reduction=r)) for r in ("mean", "sum")}
    out["mean" + space] = (mse["mean"], dmse["mean"])
    out["sum" + space] = (mse["sum"], dmse["sum"])
    out["sum_mean" + space] = (mse["sum"], dmse["mean"])
  reg = None if real_logits is None else float(losses.itmn_regularizer(real_logits, fake_logits))
  return out, reg


def statements(mse, dmse, reg):
  """The paper's two statements under one scaling: (alpha ratios, S1, lambda ratios, S2)."""
  a_ratio = [a * dmse / mse for a in ALPHAS]
  s1 = a_ratio[0] < NEGLIGIBLE and a_ratio[1] >= NEGLIGIBLE
  if reg is None:
    return a_ratio, s1, None, None
  l_ratio = [abs(reg) / (lam * mse) for lam in LAMBDAS]
  s2 = l_ratio[2] < NEGLIGIBLE and l_ratio[1] >= NEGLIGIBLE
  return a_ratio, s1, l_ratio, s2


def main(argv):
  del argv
  if FLAGS.make_data:
    make_data()
    return
  import jax
  import jax.numpy as jnp
  import numpy as np

  from lle import baselines, config_lib, methods, train
  from lle.data import pipeline
  from lle.methods import itmn

  if not os.path.isdir(os.path.join(data_dir(), "hdr", "reinhard")):
    raise SystemExit(f"no `hdr/reinhard` data set in {data_dir()}: run this script with --make_data first")
  paper = config_lib.load("configs/itmn.py")
  with paper.unlocked():
    paper.data.name = "hdr/reinhard"
    paper.data.data_dir = data_dir()
  examples = pipeline.eval_examples(paper)[:FLAGS.images]
  ldr = jnp.asarray(np.stack([e["input"] for e in examples]))
  hdr = jnp.asarray(np.stack([e["target"] for e in examples]))

  def d_logits(disc, images, size):
    """D's logits; a D trained on smaller crops (its FC layer fixes its input size) sees size x size tiles."""
    n, h, w, c = images.shape
    if h != size:
      images = images.reshape(n, h // size, size, w // size, size, c).transpose(0, 1, 3, 2, 4, 5)
      images = images.reshape(-1, size, size, c)
    return itmn._apply_train(disc, disc.params, images)[0]

  init_state = methods.get(paper).init(jax.random.key(0))
  size = paper.data.crop_size
  systems = []  # (name, prediction, discriminator or None, D's input size)
  systems.append(("identity (LDR as PQ)", ldr, init_state["disc"], size))
  inv = baselines.inverse_reinhard(ldr, nits_per_unit=paper.eval.baselines.inverse_reinhard_nits_per_unit)
  systems.append(("inverse Reinhard", inv, init_state["disc"], size))
  systems.append(("G, D at init (paper widths)", itmn.predict(init_state, ldr), init_state["disc"], size))
  for run in FLAGS.runs:
    config, _, state, step = train.load_checkpoint(None, run, mesh=train.make_mesh(jax.devices()[:1]))
    label = f"{os.path.basename(run.rstrip('/'))} step {step} (alpha {config.loss.alpha:g})"
    systems.append((label, itmn.predict(state, ldr), state.get("disc"), config.data.crop_size))

  print(f"{len(examples)} held-out images, {hdr.shape[1]}x{hdr.shape[2]}; negligible = below "
        f"{NEGLIGIBLE:.0%}. S1: alpha dMSE/MSE negligible at alpha=1e3, not at 1e5. S2: |R|/(lambda MSE) "
        f"negligible at lambda=1e6, not at 1e4.\n")
  print("| predictor | scaling | MSE | dMSE | dMSE/MSE | R | alpha dMSE/MSE at 1e3 / 1e5 / 1e7 | S1 | "
        "abs(R) / lambda MSE at 1e2 / 1e4 / 1e6 | S2 |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for name, pred, disc, d_size in systems:
    pred = jnp.clip(pred, 0.0, 1.0)
    real = fake = None
    if disc is not None:
      real, fake = d_logits(disc, hdr, d_size), d_logits(disc, pred, d_size)
    by_scaling, reg = terms(pred, hdr, real, fake)
    for scaling in SCALINGS:
      mse, dmse = by_scaling[scaling]
      a_ratio, s1, l_ratio, s2 = statements(mse, dmse, reg)
      fmt = lambda xs: " / ".join(f"{x:.2g}" for x in xs)
      print(f"| {name} | {scaling} | {mse:.3g} | {dmse:.3g} | {dmse / mse:.3g} | "
            f"{'' if reg is None else f'{reg:.3f}'} | {fmt(a_ratio)} | {'yes' if s1 else 'no'} | "
            f"{'' if l_ratio is None else fmt(l_ratio)} | {'' if s2 is None else ('yes' if s2 else 'no')} |")


if __name__ == "__main__":
  app.run(main)
