"""ACT: Action Chunking Transformer (Zhao et al. 2023, "Learning Fine-Grained Bimanual Manipulation with Low-Cost
Hardware"), with upstream LeRobot's architecture and parameter names so checkpoints cross both ways.

    training (CVAE):   [cls, state, a_1..a_k] --vae_encoder--> (mu, log sigma^2) --sample--> z
    always:            [z, state, env, image pixels] --encoder--> memory;  k zero queries + learned positions
                       --decoder(memory)--> action_head --> (B, k, action_dim)
    inference:         z = 0 (the VAE encoder is not run)

Images go through one shared ResNet (FrozenBatchNorm2d, layer4 feature map), a 1x1 conv to dim_model, and get fixed
2-D sinusoidal positions; the 1-D tokens (latent, state, env) get learned positions. Loss: L1 between predicted and
true actions, masked by `action_is_pad`, plus kl_weight * KL(N(mu, sigma) || N(0, 1)).

Layout here is batch-first (B, S, D) with attention through `scaled_dot_product_attention`; the parameters are
`nn.MultiheadAttention`'s (in_proj_weight/in_proj_bias/out_proj), so the maths and the names are upstream's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from itertools import chain

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot_train.configs.constants import ACTION, OBS_ENV_STATE, OBS_STATE
from lerobot_train.policies.act.configuration_act import ACTConfig
from lerobot_train.policies.backbones.resnet import FrozenBatchNorm2d, make_resnet
from lerobot_train.policies.pretrained import PreTrainedPolicy


class ACTPolicy(PreTrainedPolicy):
    """ACT behind the policy contract: forward (training loss), predict_action_chunk, select_action (chunk queue of
    n_action_steps, or temporal ensembling)."""

    config_class = ACTConfig
    name = "act"

    def __init__(self, config: ACTConfig) -> None:
        super().__init__(config)
        config.validate_features()
        self.config: ACTConfig = config
        self.model = ACT(config)
        self.temporal_ensembler = (
            ACTTemporalEnsembler(config.temporal_ensemble_coeff, config.chunk_size)
            if config.temporal_ensemble_coeff is not None else None
        )
        self.reset()

    def get_optim_params(self) -> list[dict]:
        """Two groups: everything but the backbone (optimizer lr) and the backbone (optimizer_lr_backbone)."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        return [
            {"params": [p for n, p in named if not n.startswith("model.backbone")]},
            {"params": [p for n, p in named if n.startswith("model.backbone")], "lr": self.config.optimizer_lr_backbone},
        ]

    def reset(self) -> None:
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)
        if self.temporal_ensembler is not None:
            self.temporal_ensembler.reset()

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        self.eval()  # the queue may be consumed while a training loop left the module in train mode
        if self.temporal_ensembler is not None:
            return self.temporal_ensembler.update(self.predict_action_chunk(batch))
        if not self._action_queue:
            chunk = self.predict_action_chunk(batch)[:, : self.config.n_action_steps]
            self._action_queue.extend(chunk.transpose(0, 1))  # queue of (B, action_dim), oldest first
        return self._action_queue.popleft()

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        if kwargs.get("inference_delay") is not None or kwargs.get("prev_chunk_left_over") is not None:
            raise ValueError("ACT does not support real-time chunking guidance (it is not a flow/diffusion sampler)")
        self.eval()
        return self.model(batch)[0]

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Training/validation loss on a normalized batch with `action` (B, chunk, A) and `action_is_pad` (B, chunk)."""
        if ACTION not in batch or "action_is_pad" not in batch:
            raise ValueError("ACT's loss needs 'action' (B, chunk_size, action_dim) and 'action_is_pad' (B, chunk_size)")
        actions_hat, (mu, log_sigma_x2) = self.model(batch)
        valid = ~batch["action_is_pad"].unsqueeze(-1)
        l1_loss = (F.l1_loss(batch[ACTION], actions_hat, reduction="none") * valid).mean()
        info = {"l1_loss": l1_loss.item()}
        if mu is None:  # no VAE, or evaluation mode (latent fixed at zero)
            return l1_loss, info
        # KL(N(mu, sigma^2) || N(0, 1)) summed over the latent dimensions, averaged over the batch
        kld = (-0.5 * (1 + log_sigma_x2 - mu.pow(2) - log_sigma_x2.exp())).sum(-1).mean()
        info["kld_loss"] = kld.item()
        return l1_loss + kld * self.config.kl_weight, info


class ACTTemporalEnsembler:
    """Online exponentially weighted average of every chunk's prediction for the same time step (ACT's Algorithm 2).

    The prediction made i steps ago for the current step has weight w_i = exp(-coeff * i) counted from the OLDEST
    (w_0), so a positive coeff favours older predictions. Each call takes a new (B, chunk, A) chunk aligned to the
    current step, folds it into the running averages and pops the average for the current step.
    """

    def __init__(self, temporal_ensemble_coeff: float, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.weights = torch.exp(-temporal_ensemble_coeff * torch.arange(chunk_size))
        self.weights_cumsum = torch.cumsum(self.weights, dim=0)
        self.reset()

    def reset(self) -> None:
        self.ensembled: Tensor | None = None  # (B, steps left, A) running averages
        self.counts: Tensor | None = None  # (steps left, 1) how many predictions each average holds

    def update(self, actions: Tensor) -> Tensor:
        weights = self.weights.to(actions.device)
        cumsum = self.weights_cumsum.to(actions.device)
        if self.ensembled is None:
            self.ensembled = actions.clone()
            self.counts = torch.ones((self.chunk_size, 1), dtype=torch.long, device=actions.device)
        else:
            # new average = (old average * sum of old weights + new * next weight) / sum of all weights
            averaged = self.ensembled * cumsum[self.counts - 1]
            averaged = (averaged + actions[:, :-1] * weights[self.counts]) / cumsum[self.counts]
            counts = torch.clamp(self.counts + 1, max=self.chunk_size)
            self.ensembled = torch.cat([averaged, actions[:, -1:]], dim=1)  # the last step has no history yet
            self.counts = torch.cat([counts, torch.ones_like(counts[-1:])])
        action = self.ensembled[:, 0]
        self.ensembled, self.counts = self.ensembled[:, 1:], self.counts[1:]
        return action


class ACT(nn.Module):
    """The network. Submodule names and creation order are upstream's (checkpoint keys, optimizer param order)."""

    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim_model
        state_ft, env_ft, action_ft = config.robot_state_feature, config.env_state_feature, config.action_feature
        self.image_keys = list(config.image_features)

        if config.use_vae:
            self.vae_encoder = ACTEncoder(config, is_vae_encoder=True)
            self.vae_encoder_cls_embed = nn.Embedding(1, dim)
            if state_ft:
                self.vae_encoder_robot_state_input_proj = nn.Linear(state_ft.shape[0], dim)
            self.vae_encoder_action_input_proj = nn.Linear(action_ft.shape[0], dim)
            self.vae_encoder_latent_output_proj = nn.Linear(dim, config.latent_dim * 2)
            num_vae_tokens = 1 + config.chunk_size + (1 if state_ft else 0)  # [cls, state?, actions]
            self.register_buffer("vae_encoder_pos_enc", sinusoidal_positions_1d(num_vae_tokens, dim).unsqueeze(0))

        if self.image_keys:
            resnet = make_resnet(
                config.vision_backbone,
                config.pretrained_backbone_weights,
                norm_layer=FrozenBatchNorm2d,
                replace_stride_with_dilation=(False, False, bool(config.replace_final_stride_with_dilation)),
                include_top=False,
            )
            self.backbone = resnet  # layer4's feature map; no avgpool/fc, as upstream's IntermediateLayerGetter

        self.encoder = ACTEncoder(config)
        self.decoder = ACTDecoder(config)

        # encoder tokens: [latent, state?, env?, image pixels...]
        if state_ft:
            self.encoder_robot_state_input_proj = nn.Linear(state_ft.shape[0], dim)
        if env_ft:
            self.encoder_env_state_input_proj = nn.Linear(env_ft.shape[0], dim)
        self.encoder_latent_input_proj = nn.Linear(config.latent_dim, dim)
        if self.image_keys:
            self.encoder_img_feat_input_proj = nn.Conv2d(self.backbone.num_features, dim, kernel_size=1)
        self.n_1d_tokens = 1 + (1 if state_ft else 0) + (1 if env_ft else 0)
        self.encoder_1d_feature_pos_embed = nn.Embedding(self.n_1d_tokens, dim)
        if self.image_keys:
            self.encoder_cam_feat_pos_embed = SinusoidalPositionEmbedding2d(dim // 2)

        # decoder queries: learned positions (DETR's object queries) over zero inputs
        self.decoder_pos_embed = nn.Embedding(config.chunk_size, dim)
        self.action_head = nn.Linear(dim, action_ft.shape[0])

        for p in chain(self.encoder.parameters(), self.decoder.parameters()):
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    # -------------------------------------------------------------------------------------------------------
    def _latent(self, batch: dict[str, Tensor], batch_size: int, device: torch.device):
        """(latent sample, mu, log sigma^2): from the VAE encoder while training, zeros otherwise."""
        cfg = self.config
        if not (cfg.use_vae and self.training and ACTION in batch):
            if cfg.use_vae and self.training:
                raise ValueError("ACT with use_vae needs the action chunk in the batch while training")
            return torch.zeros(batch_size, cfg.latent_dim, device=device), None, None
        actions = batch[ACTION]
        tokens = [self.vae_encoder_cls_embed.weight.unsqueeze(0).expand(batch_size, 1, -1)]
        if cfg.robot_state_feature:
            tokens.append(self.vae_encoder_robot_state_input_proj(batch[OBS_STATE]).unsqueeze(1))
        tokens.append(self.vae_encoder_action_input_proj(actions))
        tokens = torch.cat(tokens, dim=1)  # (B, 1 [+1] + chunk, D)
        n_prefix = tokens.shape[1] - actions.shape[1]
        pad = torch.cat([torch.zeros(batch_size, n_prefix, dtype=torch.bool, device=device), batch["action_is_pad"]], 1)
        cls_out = self.vae_encoder(tokens, pos_embed=self.vae_encoder_pos_enc, key_padding_mask=pad)[:, 0]
        params = self.vae_encoder_latent_output_proj(cls_out)
        mu, log_sigma_x2 = params[:, : cfg.latent_dim], params[:, cfg.latent_dim:]  # log_sigma_x2 = 2 log sigma
        return mu + log_sigma_x2.div(2).exp() * torch.randn_like(mu), mu, log_sigma_x2

    def _image_tokens(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, pixels, D) tokens of all cameras in config order and their (1, pixels, D) positions."""
        images = [batch[key] for key in self.image_keys]
        if len({tuple(img.shape) for img in images}) == 1 and len(images) > 1:
            # one backbone pass for all cameras (FrozenBatchNorm2d: samples never interact)
            maps = self.backbone.forward_features(_conv_layout(torch.cat(images, 0))).chunk(len(images), 0)
        else:
            maps = [self.backbone.forward_features(_conv_layout(img)) for img in images]
        tokens, positions = [], []
        for feature_map in maps:
            positions.append(self.encoder_cam_feat_pos_embed(feature_map).to(feature_map.dtype))
            tokens.append(self.encoder_img_feat_input_proj(feature_map).flatten(2).transpose(1, 2))
        return torch.cat(tokens, 1), torch.cat(positions, 1)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, tuple[Tensor | None, Tensor | None]]:
        """(B, chunk, action_dim) actions and (mu, log sigma^2) of the latent (None when not sampled)."""
        cfg = self.config
        first = batch[self.image_keys[0]] if self.image_keys else batch[OBS_ENV_STATE]
        batch_size, device = first.shape[0], first.device
        latent, mu, log_sigma_x2 = self._latent(batch, batch_size, device)

        tokens = [self.encoder_latent_input_proj(latent)]
        if cfg.robot_state_feature:
            tokens.append(self.encoder_robot_state_input_proj(batch[OBS_STATE]))
        if cfg.env_state_feature:
            tokens.append(self.encoder_env_state_input_proj(batch[OBS_ENV_STATE]))
        tokens = torch.stack(tokens, dim=1)  # (B, n_1d, D)
        positions = self.encoder_1d_feature_pos_embed.weight.unsqueeze(0)  # (1, n_1d, D)
        if self.image_keys:
            image_tokens, image_positions = self._image_tokens(batch)
            tokens = torch.cat([tokens, image_tokens], 1)
            positions = torch.cat([positions.to(image_positions.dtype), image_positions], 1)

        memory = self.encoder(tokens, pos_embed=positions)
        queries = torch.zeros(batch_size, cfg.chunk_size, cfg.dim_model, dtype=positions.dtype, device=device)
        decoded = self.decoder(queries, memory, decoder_pos_embed=self.decoder_pos_embed.weight.unsqueeze(0),
                               encoder_pos_embed=positions)
        return self.action_head(decoded), (mu, log_sigma_x2)


def _conv_layout(images: Tensor) -> Tensor:
    """Images in the memory layout the backbone's convolutions run fastest in (same values, same maths).

    Channels-last (NHWC) runs oneDNN's faster kernels. On CPU, torch sends a small convolution (batch 1 and under
    20480 input elements) to its native NCHW kernel instead, and a channels-last tensor then pays a copy per layer;
    the smallest map, layer4's input (B x 256 x H/16 x W/16), stays above that bound once B*H*W > 40960.
    """
    if images.device.type == "cuda" or images.shape[0] * images.shape[-2] * images.shape[-1] > 40960:
        return images.contiguous(memory_format=torch.channels_last)
    return images


def multihead_attention(attn: nn.MultiheadAttention, query: Tensor, key: Tensor, value: Tensor,
                        key_padding_mask: Tensor | None = None) -> Tensor:
    """nn.MultiheadAttention's maths on batch-first (B, S, D) tensors through scaled_dot_product_attention.
    `key_padding_mask` (B, S_k) is True where a key is padding (ignored), as in nn.MultiheadAttention."""
    dim, heads = attn.embed_dim, attn.num_heads
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    if query is key:
        q, k = F.linear(query, weight[: 2 * dim], bias[: 2 * dim]).chunk(2, dim=-1)
    else:
        q = F.linear(query, weight[:dim], bias[:dim])
        k = F.linear(key, weight[dim: 2 * dim], bias[dim: 2 * dim])
    v = F.linear(value, weight[2 * dim:], bias[2 * dim:])
    batch, n_q, n_k = query.shape[0], query.shape[1], key.shape[1]
    q = q.view(batch, n_q, heads, dim // heads).transpose(1, 2)
    k = k.view(batch, n_k, heads, dim // heads).transpose(1, 2)
    v = v.view(batch, n_k, heads, dim // heads).transpose(1, 2)
    mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=attn.dropout if attn.training else 0.0)
    return attn.out_proj(out.transpose(1, 2).reshape(batch, n_q, dim))


class ACTEncoder(nn.Module):
    """A stack of encoder layers (+ a final LayerNorm with pre_norm). Also the VAE encoder (its own depth)."""

    def __init__(self, config: ACTConfig, is_vae_encoder: bool = False) -> None:
        super().__init__()
        depth = config.n_vae_encoder_layers if is_vae_encoder else config.n_encoder_layers
        self.layers = nn.ModuleList([ACTEncoderLayer(config) for _ in range(depth)])
        self.norm = nn.LayerNorm(config.dim_model) if config.pre_norm else nn.Identity()

    def forward(self, x: Tensor, pos_embed: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos_embed=pos_embed, key_padding_mask=key_padding_mask)
        return self.norm(x)


class ACTEncoderLayer(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(config.dim_model, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(config.dim_model, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, config.dim_model)
        self.norm1 = nn.LayerNorm(config.dim_model)
        self.norm2 = nn.LayerNorm(config.dim_model)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.activation = activation_fn(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, pos_embed: Tensor | None = None, key_padding_mask: Tensor | None = None) -> Tensor:
        # Positions are added to queries and keys only (DETR); post-norm by default, as the original ACT.
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        qk = x if pos_embed is None else x + pos_embed
        x = skip + self.dropout1(multihead_attention(self.self_attn, qk, qk, x, key_padding_mask))
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = self.norm1(x)
            skip = x
        x = skip + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm2(x)


class ACTDecoder(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList([ACTDecoderLayer(config) for _ in range(config.n_decoder_layers)])
        self.norm = nn.LayerNorm(config.dim_model)

    def forward(self, x: Tensor, encoder_out: Tensor, decoder_pos_embed: Tensor | None = None,
                encoder_pos_embed: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, encoder_out, decoder_pos_embed=decoder_pos_embed, encoder_pos_embed=encoder_pos_embed)
        return self.norm(x)


class ACTDecoderLayer(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(config.dim_model, config.n_heads, dropout=config.dropout)
        self.multihead_attn = nn.MultiheadAttention(config.dim_model, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(config.dim_model, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, config.dim_model)
        self.norm1 = nn.LayerNorm(config.dim_model)
        self.norm2 = nn.LayerNorm(config.dim_model)
        self.norm3 = nn.LayerNorm(config.dim_model)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)
        self.activation = activation_fn(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: Tensor, encoder_out: Tensor, decoder_pos_embed: Tensor | None = None,
                encoder_pos_embed: Tensor | None = None) -> Tensor:
        def with_pos(t: Tensor, pos: Tensor | None) -> Tensor:
            return t if pos is None else t + pos

        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        qk = with_pos(x, decoder_pos_embed)
        x = skip + self.dropout1(multihead_attention(self.self_attn, qk, qk, x))
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = self.norm1(x)
            skip = x
        attended = multihead_attention(self.multihead_attn, with_pos(x, decoder_pos_embed),
                                       with_pos(encoder_out, encoder_pos_embed), encoder_out)
        x = skip + self.dropout2(attended)
        if self.pre_norm:
            skip, x = x, self.norm3(x)
        else:
            x = self.norm2(x)
            skip = x
        x = skip + self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm3(x)


def sinusoidal_positions_1d(num_positions: int, dimension: int) -> Tensor:
    """(num_positions, dimension) "Attention is all you need" positions: sin on even, cos on odd channels, with
    frequency 1 / 10000^(2 floor(j/2) / dimension)."""
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    exponent = 2 * (torch.arange(dimension, dtype=torch.float64) // 2) / dimension
    angles = position / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponent)
    table = torch.empty_like(angles)
    table[:, 0::2] = angles[:, 0::2].sin()
    table[:, 1::2] = angles[:, 1::2].cos()
    return table.float()


class SinusoidalPositionEmbedding2d(nn.Module):
    """Fixed 2-D positions for a (B, C, H, W) feature map, as tokens: (1, H*W, 2*dimension), row-major.

    Row and column indices run 1..H and 1..W (as the original code), are scaled to (0, 2 pi], and each is encoded
    with `dimension` interleaved sin/cos channels of frequencies 1/10000^(2 floor(j/2)/dimension); the y half comes
    first. The result depends only on (H, W), so it is computed once per map size and cached.
    """

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.dimension = dimension
        self._cache: dict[tuple[int, int, torch.device], Tensor] = {}

    def _table(self, height: int, width: int, device: torch.device) -> Tensor:
        eps, two_pi = 1e-6, 2 * math.pi
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        y = y / (y[-1:] + eps) * two_pi
        x = x / (x[-1:] + eps) * two_pi
        inverse_frequency = 10000 ** (2 * (torch.arange(self.dimension, dtype=torch.float32, device=device) // 2) / self.dimension)

        def encode(values: Tensor) -> Tensor:  # (N,) -> (N, dimension), channels sin, cos, sin, cos, ...
            angles = values.unsqueeze(-1) / inverse_frequency
            return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=-1).flatten(1)

        pos_y = encode(y).unsqueeze(1).expand(height, width, self.dimension)
        pos_x = encode(x).unsqueeze(0).expand(height, width, self.dimension)
        return torch.cat([pos_y, pos_x], dim=-1).reshape(1, height * width, 2 * self.dimension)

    def forward(self, feature_map: Tensor) -> Tensor:
        height, width = feature_map.shape[-2:]
        key = (height, width, feature_map.device)
        if key not in self._cache:
            with torch.inference_mode(False), torch.no_grad():  # a plain constant, usable in later training graphs
                self._cache[key] = self._table(height, width, feature_map.device)
        return self._cache[key]


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    activations = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}
    if name not in activations:
        raise ValueError(f"feedforward_activation must be relu, gelu or glu, got {name!r}")
    return activations[name]
