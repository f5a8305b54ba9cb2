"""The PyTorch twin of SSMKit's S4D SequenceModel (features input, pooled output), built from the
official s4d.py `S4D` layer, imported at run time from the state-spaces/s4 checkout that
scripts/peers/setup.sh makes (scripts/peers/official.py; nothing of the official code is copied
here). Its state_dict names are the ones SSMKit's checkpoints use: encoder.*, s4_layers.{i}.*,
norms.{i}.*, decoder.*.

    x = encoder(u)                                  Linear(F, H), u: (B, L, F)
    x = x + S4D(LayerNorm(x))   for each layer      pre-norm residual blocks
    logits = decoder(mean over L of x)              Linear(H, K)

    s4d = official.load_s4d(args.s4_source)
    model = S4DModel(s4d, features, width, state, layers, classes)

With `official.load_s4(...)` and `S4DModel.s4_layer` as `make_layer`, the blocks are the official
standalone s4.py S4Block (FFTConv with the DPLR kernel, GELU, Linear(H, 2H) and GLU), the peer
of SSMKit's S4 model.
"""
import torch.nn as nn


class S4DModel(nn.Module):
    def __init__(self, module, features, width, state, layers, classes, make_layer=None):
        """module: the official s4d.py module (official.load_s4d), or s4.py's (official.load_s4) with
        make_layer=S4DModel.s4_layer."""
        super().__init__()
        make_layer = make_layer or S4DModel.s4d_layer
        self.encoder = nn.Linear(features, width)
        self.s4_layers = nn.ModuleList([make_layer(module, width, state) for _ in range(layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(layers)])
        self.decoder = nn.Linear(width, classes)

    @staticmethod
    def s4d_layer(s4d, width, state):
        return s4d.S4D(width, d_state=state, dropout=0.0, transposed=True)

    @staticmethod
    def s4_layer(s4, width, state):
        # n_ssm defaults to H: every channel its own (A, B, P), as SSMKit's S4 mixer.
        return s4.S4Block(width, d_state=state, mode="dplr", dropout=0.0, transposed=True)

    def forward(self, u):
        x = self.encoder(u).transpose(-1, -2)  # (B, H, L)
        for layer, norm in zip(self.s4_layers, self.norms):
            z, _ = layer(norm(x.transpose(-1, -2)).transpose(-1, -2))
            x = x + z
        return self.decoder(x.mean(dim=-1))
