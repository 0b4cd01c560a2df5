"""The attention-LSTM conversion model.

The plain PyTorch net (:mod:`.net`), its LightningModule (:mod:`.module`) and DataModule
(:mod:`.datamodule`), training (:mod:`.training`), prediction (:mod:`.predict`) and the
baselines it is compared with (:mod:`.baselines`).
"""
