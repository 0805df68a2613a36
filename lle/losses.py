"""Pure loss functions on NHWC batches. Each returns a scalar averaged over the batch."""
import jax
import jax.numpy as jnp


def _reduce(per_pixel, reduction: str):
  """'mean': average over every element (scale-free in image size). 'sum': squared Frobenius norm per
  image, averaged over the batch (the literal ||.||_F^2 of Ning et al. eq. 2)."""
  if reduction == "mean":
    return jnp.mean(per_pixel)
  if reduction == "sum":
    return jnp.mean(jnp.sum(per_pixel, axis=tuple(range(1, per_pixel.ndim))))
  raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'sum'")


def mse(pred, target, *, reduction: str = "mean"):
  return _reduce(jnp.square(pred - target), reduction)


def image_gradients(x):
  """Forward differences per channel: (d_x [N, H, W-1, C], d_y [N, H-1, W, C])."""
  return x[:, :, 1:] - x[:, :, :-1], x[:, 1:] - x[:, :-1]


def dmse(pred, target, *, reduction: str = "mean"):
  """Ning et al. 2018 eq. 2: ||d_x G(L) - d_x H||^2 + ||d_y G(L) - d_y H||^2, per channel."""
  pdx, pdy = image_gradients(pred)
  tdx, tdy = image_gradients(target)
  return _reduce(jnp.square(pdx - tdx), reduction) + _reduce(jnp.square(pdy - tdy), reduction)


def itmn_regularizer(real_logits, fake_logits):
  """Ning et al. 2018 eq. 3: R = E_H[log(1 - D(H))] + E_L[log D(G(L))], with D = sigmoid(logits).

  The generator minimises R (eq. 4), which lowers D on its outputs; the discriminator maximises it,
  which raises D on generated images and lowers it on real ones: in this paper's sign convention D(x)
  is the probability that x is *generated*. log D = log_sigmoid(logit) and log(1 - D) =
  log_sigmoid(-logit) keep it finite for any logit.
  """
  real_term = 0.0 if real_logits is None else jnp.mean(jax.nn.log_sigmoid(-real_logits))
  return real_term + jnp.mean(jax.nn.log_sigmoid(fake_logits))


GENERATOR_ADVERSARIAL_FORMS = ("saturating", "non_saturating")


def itmn_generator_adversarial(fake_logits, *, form: str, real_logits=None):
  """The adversarial term the generator minimises, in Ning et al.'s convention (D = P(generated)).

  'saturating': R itself (eq. 3-4), E[log D(G(L))] (+ E[log(1 - D(H))] when `real_logits` are given,
  which matters only when D's batch statistics mix real and generated images). Its gradient
  d log D / d logit = 1 - D vanishes when D is sure that G's images are generated: early in training.
  'non_saturating': -E[log(1 - D(G(L)))], Goodfellow et al. 2014 sec. 3's fix: the same fixed point,
  with a gradient of D that is largest exactly there.
  """
  if form == "saturating":
    return itmn_regularizer(real_logits, fake_logits)
  if form == "non_saturating":
    return -jnp.mean(jax.nn.log_sigmoid(-fake_logits))
  raise ValueError(f"unknown loss.generator_adversarial {form!r}; expected one of {GENERATOR_ADVERSARIAL_FORMS}")


def weighted_l1(pred, target, *, channel_weights):
  """Mean over every element of |pred - target| * w_c, the channel weight w broadcast over the last axis
  (Wang et al. 2018, GLADNet, eq. 1 with per-channel weights)."""
  w = jnp.asarray(channel_weights, dtype=pred.dtype)
  return jnp.mean(jnp.abs(pred - target) * w)


def huber(pred, target, *, delta: float = 1.0):
  """Huber 1964 on the residual a = target - pred, per element, averaged (Jiang et al. 2021, eq. 1-2):
  a^2 / 2 where |a| <= delta, else delta (|a| - delta / 2).

  `delta` is in the images' units: on images in [0, 1] every |a| <= 1, so delta >= 1 gives exactly
  MSE / 2. For images scaled by k, huber(k x, k y, delta) = k^2 huber(x, y, delta / k).
  """
  a = jnp.abs(target - pred)
  quadratic = jnp.minimum(a, delta)
  return jnp.mean(0.5 * quadratic**2 + delta * (a - quadratic))


def cosine_similarity(a, b, *, eps: float = 1e-12):
  """Cosine similarity of each image's values taken as one vector, [N, ...] -> [N]. Two all-zero vectors
  (e.g. the hue of two grey images) count as identical (similarity 1); the norms are smoothed by eps so
  the gradient at zero is finite."""
  a = a.reshape(a.shape[0], -1)
  b = b.reshape(b.shape[0], -1)
  dot = jnp.sum(a * b, axis=1)
  norm = jnp.sqrt(jnp.sum(a * a, axis=1) + eps) * jnp.sqrt(jnp.sum(b * b, axis=1) + eps)
  return (dot + eps) / norm


HUE_FORMS = ("number", "angle")


def _hue_on_circle(hsv):
  """Hue as a point on the unit circle, (cos 2 pi h, sin 2 pi h), and (0, 0) where it is undefined (grey:
  saturation 0), so that grey pixels count for nothing as they do with hue as a number."""
  angle = 2.0 * jnp.pi * hsv[..., 0]
  chromatic = (hsv[..., 1] > 0)[..., None]
  return jnp.where(chromatic, jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=-1), 0.0)


def hsv_color_loss(pred, target, *, hue: str = "number"):
  """Jiang et al. 2021 eq. 4-6: (1 - cos(H_p, H_gt)) + (1 - cos(S_p, S_gt)), averaged over the batch.

  cos is the cosine similarity of two images' channels, each channel taken as one vector (per pixel,
  the cosine of two numbers would only compare their signs). `hue`: 'number' takes H as the number in
  [0, 1) of `rgb_to_hsv` (as the equations write it; TensorFlow's `tf.image.rgb_to_hsv` gives the
  same), which ignores that hue wraps around: 0.95 and 0.05 are two reds 0.1 turn apart, but far apart
  as numbers. 'angle' takes each pixel's hue as a point on the unit circle (grey pixels: none), so the
  hue term is 1 - the mean over chromatic pixels of cos(2 pi (h_p - h_gt)) (when both have the same
  chromatic pixels).
  """
  from lle import color
  p = color.rgb_to_hsv(jnp.clip(pred, 0.0, 1.0))
  t = color.rgb_to_hsv(jnp.clip(target, 0.0, 1.0))
  if hue == "number":
    hp, ht = p[..., 0], t[..., 0]
  elif hue == "angle":
    hp, ht = _hue_on_circle(p), _hue_on_circle(t)
  else:
    raise ValueError(f"unknown loss.hue {hue!r}; expected one of {HUE_FORMS}")
  loss_h = 1.0 - cosine_similarity(hp, ht)
  loss_s = 1.0 - cosine_similarity(p[..., 1], t[..., 1])
  return jnp.mean(loss_h + loss_s)


PERCEPTUAL_DISTANCES = ("mse", "l2_over_chw")


def perceptual(pred, target, *, features, layer: str, preprocess, distance: str = "mse"):
  """Distance between VGG features of two RGB (or grey, [..., 1]) batches in [0, 1].

  features: images -> {layer: features}, e.g. `lle.nn.vgg.frozen_features(params, ...)` (no gradient
    reaches the weights); preprocess: the weights' input convention (`lle.weights.Preprocess`), applied
    here so that callers pass [0, 1] images; grey inputs are repeated to 3 channels (Montulet &
    Briassouli sec. 2.1 apply the loss to the lightness channel).
  distance: 'mse', the mean over every feature element (Montulet & Briassouli sec. 2.1; DPED's code:
    2 l2_loss / (N C H W)); 'l2_over_chw', per image ||psi(pred) - psi(target)||_2 / (C H W), averaged
    over the batch (Adlakha et al. 2021 "Content loss", as written).
  """
  if pred.shape != target.shape:
    raise ValueError(f"perceptual: pred {pred.shape} and target {target.shape} differ")
  if pred.shape[-1] == 1:
    pred, target = (jnp.repeat(x, 3, axis=-1) for x in (pred, target))
  elif pred.shape[-1] != 3:
    raise ValueError(f"perceptual: expected 1 or 3 channels, got {pred.shape}")
  # Two passes rather than one on the concatenated batch: the target's needs no backward pass.
  fp = features(preprocess(pred))[layer]
  ft = jax.lax.stop_gradient(features(preprocess(target))[layer])
  if distance == "mse":
    return jnp.mean(jnp.square(fp - ft))
  if distance == "l2_over_chw":
    per_image = jnp.sqrt(jnp.sum(jnp.square(fp - ft), axis=(1, 2, 3)) + 1e-12)
    return jnp.mean(per_image / (fp.shape[1] * fp.shape[2] * fp.shape[3]))
  raise ValueError(f"unknown perceptual distance {distance!r}; expected one of {PERCEPTUAL_DISTANCES}")


# --- DPED / IQE (Ignatov et al. 2017; Adlakha et al. 2021) ---------------------------------------------

COLOR_KERNELS = ("dped", "paper")


def color_kernel(form: str, size: int = 21, sigma: float = 3.0):
  """The [size, size] blur kernel of the colour loss, summing to 1 (numpy float32).

  'dped': the official code's `gauss_kernel(21, 3)`: kern1d = the N(0, 1) mass of `size` equal bins
  spanning +-(sigma + (2 sigma + 1) / (2 size)), then sqrt(outer(kern1d, kern1d)), normalised. The square
  root widens it: close to a Gaussian of std sqrt(2) * 21 / (6 + 1/3) = 4.69 pixels at 21 / 3.
  'paper': Adlakha et al.'s G(k, l) = A exp(-k^2 / (2 sigma) - l^2 / (2 sigma)) on offsets -10..10 (sigma in
  the denominator, not sigma^2: a Gaussian of std sqrt(sigma) = 1.73 pixels); A = 0.053 is 1 / (2 pi sigma)
  to 0.1%, so it is normalised to sum 1 here.
  """
  import numpy as np
  from scipy import stats
  if form == "dped":
    interval = (2 * sigma + 1.0) / size
    edges = np.linspace(-sigma - interval / 2.0, sigma + interval / 2.0, size + 1)
    kern1d = np.diff(stats.norm.cdf(edges))
    kernel = np.sqrt(np.outer(kern1d, kern1d))
  elif form == "paper":
    k = np.arange(size) - size // 2
    kernel = np.exp(-(k[:, None] ** 2) / (2 * sigma) - (k[None, :] ** 2) / (2 * sigma))
  else:
    raise ValueError(f"unknown colour kernel {form!r}; expected one of {COLOR_KERNELS}")
  return (kernel / kernel.sum()).astype(np.float32)


def blur(images, kernel, *, forms: str = "auto"):
  """Each channel of [N, H, W, C] convolved with `kernel` [k, k], zero 'SAME' padding (TF's
  depthwise_conv2d with padding='SAME'): that depthwise convolution itself with the "plain" layer forms
  (`lle.nn.layers.LAYER_FORMS`). With the "cpu" forms a separable kernel (both colour kernels are:
  outer(a, a)) runs as a column pass then a row pass; zero padding commutes with the split, so the result
  is the same up to rounding. Each pass is a matrix product with the [H, H] (or [W, W]) banded matrix of
  the 1-D kernel, whose rows stop at the image's border (the zero padding): the same sums as the
  depthwise convolution, whose forward and backward passes XLA's CPU backend runs 20-27x slower (8 x 48^2
  and 2 x 100^2 images; a sixth of an iqe demo train step)."""
  import numpy as np

  from lle.nn.layers import resolve_forms
  kernel = np.asarray(kernel, np.float64)
  factor = np.sqrt(np.diag(kernel))
  channels = images.shape[-1]
  separable = kernel.shape[0] == kernel.shape[1] and np.allclose(np.outer(factor, factor), kernel, rtol=1e-5, atol=1e-9)
  if resolve_forms(forms) == "plain" or not separable:
    k = jnp.asarray(kernel, images.dtype)[:, :, None, None]
    return jax.lax.conv_general_dilated(images, jnp.tile(k, (1, 1, 1, channels)), (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels)
  columns = jnp.einsum("ij,njwc->niwc", _band_matrix(factor, images.shape[1], images.dtype), images,
                       precision=jax.lax.Precision.HIGHEST)
  return jnp.einsum("ij,nhjc->nhic", _band_matrix(factor, images.shape[2], images.dtype), columns,
                    precision=jax.lax.Precision.HIGHEST)


def _band_matrix(taps, size: int, dtype):
  """M [size, size] with (M x)[i] = sum_t taps[t] x[i + t - low], x zero outside [0, size): the 1-D
  correlation with 'SAME' padding (low = (k - 1) // 2 before, the rest after)."""
  import numpy as np
  k = len(taps)
  offset = np.arange(size)[None, :] - np.arange(size)[:, None] + (k - 1) // 2  # t for output i, input j
  inside = (offset >= 0) & (offset < k)
  return jnp.asarray(np.where(inside, np.asarray(taps)[np.clip(offset, 0, k - 1)], 0.0), dtype)


def color_loss(pred, target, *, kernel, sum_scale: float = 0.5, forms: str = "auto"):
  """sum((blur(pred) - blur(target))^2) * sum_scale / N: DPED's code uses sum_scale 0.5 (a sum over the
  batch divided by 2 x batch); 1.0 is Adlakha et al.'s ||X_b - Y_b||_2^2 per image, averaged. The blur is
  linear: one blur of the difference gives blur(pred) - blur(target) with half the work. `forms`: the
  blur's (`blur`)."""
  diff = blur(pred - target, kernel, forms=forms)
  return jnp.sum(jnp.square(diff)) * sum_scale / pred.shape[0]


TV_FORMS = ("dped", "paper")


def total_variation(images, *, form: str = "dped"):
  """'dped': mean(d_x^2) + mean(d_y^2) over every element (the code's 2 (l2(d_x) / |d_x| + l2(d_y) / |d_y|)
  / N). 'paper': per image ||d_x + d_y||_2 / (C H W), both differences taken on the (H-1) x (W-1) pixels
  that have both, averaged over the batch (Adlakha et al. "Total Variational Loss", as written)."""
  dx, dy = image_gradients(images)
  if form == "dped":
    return jnp.mean(jnp.square(dx)) + jnp.mean(jnp.square(dy))
  if form == "paper":
    both = dx[:, :-1] + dy[:, :, :-1]
    norm = jnp.sqrt(jnp.sum(jnp.square(both), axis=(1, 2, 3)) + 1e-12)
    return jnp.mean(norm / (images.shape[1] * images.shape[2] * images.shape[3]))
  raise ValueError(f"unknown total-variation form {form!r}; expected one of {TV_FORMS}")


def rgb_to_grey(images):
  """TensorFlow's `rgb_to_grayscale` weights (ITU-R BT.601 luma), [..., 3] -> [..., 1]."""
  return jnp.sum(images * jnp.asarray([0.2989, 0.5870, 0.1140], images.dtype), axis=-1, keepdims=True)


def dped_cross_entropy(logits, is_target_photo):
  """DPED's discriminator loss: -sum over the batch of onehot . log(clip(softmax(logits), 1e-10, 1)), the
  onehot [1, 0] for a target photo and [0, 1] for an enhanced image (a sum, not a mean, as the code)."""
  probs = jnp.clip(jax.nn.softmax(logits, axis=-1), 1e-10, 1.0)
  onehot = jnp.stack([is_target_photo, 1.0 - is_target_photo], axis=-1)
  return -jnp.sum(onehot * jnp.log(probs))


TEXTURE_FORMS = ("dped", "paper")


def texture_loss(enhanced_logits, *, form: str):
  """What the generator minimises from D's logits on enhanced images, summed over the batch.
  'dped': the code's -(D's loss with every sample enhanced) = sum log P(enhanced): the minimax form,
  whose gradient vanishes where D is sure. 'paper': -sum log D(F(I_s)), with D the probability of a
  target photo (Adlakha et al. "Texture loss", as written): the non-saturating form."""
  probs = jnp.clip(jax.nn.softmax(enhanced_logits, axis=-1), 1e-10, 1.0)
  if form == "dped":
    return jnp.sum(jnp.log(probs[:, 1]))
  if form == "paper":
    return -jnp.sum(jnp.log(probs[:, 0]))
  raise ValueError(f"unknown texture form {form!r}; expected one of {TEXTURE_FORMS}")
