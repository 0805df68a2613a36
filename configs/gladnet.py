"""GLADNet: Wang et al. 2018, "GLADNet: Low-Light Enhancement Network with Global Awareness" (FG 2018),
and its official TensorFlow code (github weichen582/GLADNet, `model.py`, `main.py`). Where the two
disagree the default follows the code (the released model) and the `paper` variant follows the text.

Variants (`--config=configs/gladnet.py:VARIANT[,VARIANT]`):
  code   (the default) the official code: 6 down / 6 up blocks, channel weights 0.11448, 0.58661, 0.29891
         applied to R, G, B (the paper's weights in reversed order: a BGR-order artefact of the code)
  paper  the text: 5 down / 5 up blocks (sec. III-B, 3x3 bottleneck), weights 0.29891, 0.58661, 0.11448
         on R, G, B (sec. II-C), He initialisation (sec. III-B, [13]; the code: TF's Glorot default), the
         learning rate multiplied by 0.96 after each 100 batches (a staircase; the code decays smoothly)
  nr     also score LIME, DICM and MEF without references (NIQE), as sec. III-C evaluates on them
  montulet  the data of Montulet & Briassouli's Table 1 (darkened FiveK expert C, 442 test images, the
            darkened inputs saved as 8-bit images, scored as configs/tmgan.py scores). Table 1's GLADNet
            column is the released model ("the weights provided on their respective Github pages",
            their sec. 4.2): convert it, then score it on this data into its own folder:
              ./launch.sh python -m lle.weights gladnet --from GLADNet/model --id=gladnet_release
              ./launch.sh eval --config=configs/gladnet.py:montulet \
                  --workdir=$LLE_WEIGHTS_DIR/gladnet_release --results_dir=runs/fivek/gladnet_release
            Its results.json says "weights": "release"; a run trained here says "trained", and the report's
            tmgan_table1 puts the two in separate columns.
  demo   the embedded low-light demo data (`lle_demo/lowlight`), sized to train in minutes on a CPU
  tiny   a minimal model and data for tests
"""
import ml_collections

from lle import config_lib

LOL_TRAIN_PAIRS = 485  # LOL v1 our485


def get_config(arg=None):
  c = config_lib.base("gladnet")
  c.batch_size = 8  # sec. III-B: "each mini-batch contains 8 image pairs"; code: batch_size 8
  # sec. III-B: 50 epochs; the code runs len(train) // batch_size batches per epoch: 60 on LOL's 485 pairs.
  c.num_train_steps = 50 * (LOL_TRAIN_PAIRS // c.batch_size)
  c.eval_every_steps = 600  # not in the paper: every 10 epochs
  c.checkpoint_every_steps = 600  # not in the paper

  # Not the paper's data, nor the official code's: the paper (sec. III-A) trains on 700 pairs it synthesised
  # from RAISE raws (plus grey, black and white pairs; not public). The code's `main.py` reads whatever
  # pairs sit in a hard-coded folder (`.../FGtraining/{low,normal}/*.png`), its README asks for "training
  # pairs of our LOL dataset" and the "synthetic pairs" of the project page, and it evaluates on three
  # unpaired images (data/eval/low) and NIQE on DICM / NPE / MEF, with no paired test set. LOL v1 (train
  # our485, test eval15) is the public paired set on which later papers score GLADNet (NEID Table 1:
  # 19.72 dB, SSIM 0.70), so it is the default here.
  c.data.name = "lol/v1"
  c.data.train_split = "train"  # our485
  c.data.eval_split = "test"  # eval15
  c.data.input_feature = "low"
  c.data.target_feature = "high"
  c.data.target_encoding = "none"  # 8-bit sRGB target -> [0, 1]
  c.data.recipe = "gladnet"  # lle.data.pipeline.RandomPatchPair: same crop + same 8-way flip/rotation
  c.data.crop_size = 384  # code: patch_size 384

  m = c.model = ml_collections.ConfigDict()
  m.num_blocks = 6  # code: 6 stride-2 down blocks, 6 resize-conv up blocks (paper sec. III-B: 5)
  m.global_size = 96  # sec. III-B: W0 = H0 = 96; code: resize_nearest_neighbor(input, (96, 96))
  m.global_features = 64  # code: every encoder/decoder conv has 64 channels (not in the paper)
  m.detail_features = (128, 128, 128, 128)  # code: 4 x conv 128 + ReLU before the output conv
  m.kernel_size = 3  # sec. III-B: "The kernel size of GLADNet is set to 3x3"; code: 3
  m.output_activation = "relu"  # code: ReLU on the last conv (outputs are clipped only when saved)
  m.kernel_init = "glorot_uniform"  # code: tf.layers.conv2d's default (Glorot uniform, zero bias); `paper`: He

  l = c.loss = ml_collections.ConfigDict()
  # eq. 1: L1, each channel weighted; code: reduce_mean(|out - gt| * [0.11448, 0.58661, 0.29891]) on RGB.
  l.channel_weights = (0.11448, 0.58661, 0.29891)

  o = c.optimizer = ml_collections.ConfigDict()
  o.name = "adam"  # sec. III-B; code: tf.train.AdamOptimizer
  o.learning_rate = 1e-3  # sec. III-B: "We start with learning rate of 1e-3"; code: base_lr 0.001
  o.schedule = "exponential"  # code: tf.train.exponential_decay(.., 100, 0.96), staircase=False (`paper`: step)
  o.decay_every = 100  # sec. III-B: "multiply 0.96 after each 100 batch"
  o.decay_factor = 0.96  # sec. III-B
  o.b1, o.b2, o.eps = 0.9, 0.999, 1e-8  # code: TF1 AdamOptimizer defaults
  o.rmsprop_decay = 0.9  # unused by Adam; here so a sweep can set optimizer.name = rmsprop
  o.boundaries, o.boundary_factors = (), ()  # for schedule = piecewise

  e = c.eval
  e.metrics = ("psnr", "ssim")  # the metrics NEID Table 1 reports for GLADNet on LOL
  e.headline_metrics = ("psnr", "ssim")  # the same: the final table says whether the model leads both
  # code: test results are saved by utils.save_images, np.clip(x * 255, 0, 255).astype('uint8') (truncated)
  e.quantize_8bit = True
  e.quantize_rounding = "floor"
  e.color = "rgb"  # not in the paper (it reports no PSNR / SSIM): all channels, as NEID Table 1's LOL scores
  e.ssim_window = "gaussian"  # not in the paper: Wang et al. 2004's ssim_index
  e.mpsnr_reference_nits = 100.0  # used only if "mpsnr" is added to eval.metrics

  config_lib.low_light_baselines(c)  # lle.baselines.low_light: exposure-gamma, CLAHE, MSR, BIMEF

  return config_lib.apply_variants(c, arg, VARIANTS, default="code", exclusive=MODELS)


def _code(c):
  del c  # the default


def _paper(c):
  c.model.num_blocks = 5  # sec. III-B: five down-sampling and five up-sampling blocks
  c.loss.channel_weights = (0.29891, 0.58661, 0.11448)  # sec. II-C: (R, G, B)
  c.model.kernel_init = "he_gaussian"  # sec. III-B: "the initialization proposed by [13]" (He et al. 2015)
  c.optimizer.schedule = "step"  # sec. III-B: "multiply 0.96 after each 100 batch": a staircase
  # Left as in the code, since the text gives no widths: the detail step (sec. II-B speaks of "three
  # convolutional layers"; the code has 4 + the output conv: model.detail_features) and the extra
  # stride-1 conv the text puts after the input resize (the code has none).


def _demo(c):
  """A few minutes on a 2-core CPU: the embedded low-light pairs, narrower layers, 192x192 patches."""
  c.data.name = "lle_demo/lowlight"
  c.data.cache_mb = 256  # the demo's training split decodes to ~100 MB: read from disk once, then cached
  # Held-out PSNR / SSIM (lle_demo/lowlight 2.1.0, 8 stratified exposures per training photo), one run each,
  # scored along the way (the schedule depends on the step alone, so a shorter run is a longer one's start):
  #   256 crops, batch 8: step 100 15.7 / 0.643, 200 18.9 / 0.707, 300 21.5 / 0.735 (~5.6 images/s);
  #   256 crops, batch 4: step 100 15.5, 200 15.0, 300 20.0 / 0.707;
  #   192 crops, batch 8: step 100 9.3, 200 18.0, 250 18.5, 300 22.3 / 0.729, but 6.5 minutes end to end
  #     from a fresh clone (~7.9 images/s);
  #   192 crops, batch 4 (as set): step 100 15.5, 200 17.3, 300 19.2, 350 19.7, 400 20.2 / 0.717 (~6.8
  #     images/s): a steadier rise, and within the demo's minutes.
  # On the 1.1.0 data (4 free exposures per photo, the darkest 0.9 stops nearly empty) the 256-crop, batch-8
  # model stalled at 18.4 (step 200) with chelsea_0, 4.1 stops under, at 14.5 dB: no training capture was as
  # dark.
  c.batch_size = 4  # the code's 8 halved: the same steps in the demo's minutes (measured above)
  c.num_train_steps = 400
  c.eval_every_steps = 400
  c.checkpoint_every_steps = 400
  c.log_every_steps = 25
  # The global branch estimates the exposure from the crop resized to global_size (96). Evaluation feeds it
  # the whole photo (the demo's are up to 640 pixels), so it must learn from crops that show much of a
  # scene, as the code's 384 crops of LOL's 600x400 photos do: with 96 crops it saw only a patch at full
  # scale and left the darkest held-out photos too dark (1.1.0 data, 300 steps: PSNR 16.7); 192 crops show
  # it ~13% of a photo at half the cost of 256 ones.
  c.data.crop_size = 192
  c.model.global_features = 32
  # The detail step runs at the crop's full size: 16 features (were 32) hold the step to ~2.5x the 96^2 one.
  c.model.detail_features = (16, 16, 16, 16)
  c.optimizer.decay_every = 50  # a 400-step run ends at 0.96^8 of the initial rate
  c.optimizer.decay_factor = 0.96


def _tiny(c):
  config_lib.tiny_run(c, "lle_demo/lowlight")
  c.eval.baselines.include = ("identity",)  # the others: tests/test_baselines.py (seconds per photo)
  c.model.num_blocks = 2
  c.model.global_size = 16
  c.model.global_features = 4
  c.model.detail_features = (8,)
  c.eval.num_images_to_save = 1
  c.wandb.enabled = False


def _nr(c):
  """Sec. III-C: the real under-exposed sets the paper evaluates on, scored without references (NIQE).
  Build them first: python -m lle.data.build lowlight_nr/lime --manual_dir=DIR (and dicm, mef)."""
  c.eval.no_reference = ("lowlight_nr/lime", "lowlight_nr/dicm", "lowlight_nr/mef")


def _montulet(c):
  """GLADNet on the data of Montulet & Briassouli's Table 1 (configs/tmgan.py), to stand beside tmgan:
  MIT-Adobe FiveK expert C, their 442-image test split, training patches darkened by a random integer in
  [1, 128] (their sec. 3-4), held-out inputs darkened once each; GLADNet's own patch size and model."""
  import importlib.util
  import os
  spec = importlib.util.spec_from_file_location("tmgan_config", os.path.join(os.path.dirname(__file__), "tmgan.py"))
  tmgan = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tmgan)
  t = tmgan.get_config()
  for key in ("name", "input_feature", "target_feature", "recipe", "patches_per_image", "canny_sigma",
              "canny_min_edge_fraction", "canny_max_tries", "darken_min", "darken_max", "darken_gamma",
              "darken_eval", "darken_quantize_8bit", "fixed_patches"):
    c.data[key] = t.data[key]
  c.eval.metrics = tuple(t.eval.metrics)
  c.eval.quantize_rounding = t.eval.quantize_rounding
  c.eval.fsitm_reference = t.eval.fsitm_reference


VARIANTS = {"code": _code, "paper": _paper, "nr": _nr, "montulet": _montulet, "demo": _demo, "tiny": _tiny}
# The model variants; a config naming none of them is `code`, and says so in config.variants.
MODELS = ("code", "paper")
