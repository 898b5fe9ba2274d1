"""Classifier architectures as plain ``nn.Module`` classes.

The contract every architecture follows, so that any of them can be trained by
:class:`sweeplab.training.module.ClassifierModule`:

* the constructor takes ``in_shape`` (channels, height, width) and
  ``num_classes`` as its first two arguments, then keyword-only knobs;
* ``forward`` maps a float batch ``(N, C, H, W)`` to logits ``(N, num_classes)``
  (never probabilities: the loss applies the softmax);
* nothing here imports Lightning or Hydra. Each model has a config in
  ``conf/model/NAME.yaml`` whose ``_target_`` names the class and which is
  instantiated as a partial; the training code supplies the shape and class count.
"""
