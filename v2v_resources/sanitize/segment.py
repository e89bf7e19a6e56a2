"""Box-prompted masks with segment_anything's SamPredictor (RGB input, boxes through its own transform)."""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..errors import EngineError
from ..recent import Recent
from ..vram import VramManager

NAME = "sam"
EMBEDDINGS_KEPT = 4
_P = "image_encoder."


def _count(sd: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def sam_from_state_dict(sd: dict[str, torch.Tensor]):
    """Build the Sam whose shapes the checkpoint has (vit_h, vit_l, vit_b or any smaller ViT).

    Every size is read from tensor shapes; only the decoder's 8 heads, fixed in all released SAMs, are
    assumed."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    try:
        embed, _, patch, _ = sd[_P + "patch_embed.proj.weight"].shape
        grid = sd[_P + "pos_embed"].shape[1]
        depth = _count(sd, r"image_encoder\.blocks\.(\d+)\.")
        head_dim = sd[_P + "blocks.0.attn.rel_pos_h"].shape[1]
        spans = [(sd[f"{_P}blocks.{i}.attn.rel_pos_h"].shape[0] + 1) // 2 for i in range(depth)]
        window = next((s for s in spans if s != grid), 0)
        out_chans = sd[_P + "neck.0.weight"].shape[0]
        encoder = ImageEncoderViT(
            img_size=grid * patch, patch_size=patch, embed_dim=embed, depth=depth, num_heads=embed // head_dim,
            mlp_ratio=sd[_P + "blocks.0.mlp.lin1.weight"].shape[0] / embed, out_chans=out_chans,
            qkv_bias=_P + "blocks.0.attn.qkv.bias" in sd, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True, window_size=window, global_attn_indexes=[i for i, s in enumerate(spans) if s == grid])
        decoder = MaskDecoder(
            num_multimask_outputs=sd["mask_decoder.mask_tokens.weight"].shape[0] - 1, transformer_dim=out_chans,
            iou_head_depth=_count(sd, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
            iou_head_hidden_dim=sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0],
            transformer=TwoWayTransformer(
                depth=_count(sd, r"mask_decoder\.transformer\.layers\.(\d+)\."), embedding_dim=out_chans,
                mlp_dim=sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0], num_heads=8))
        prompt = PromptEncoder(embed_dim=out_chans, image_embedding_size=(grid, grid),
                               input_image_size=(grid * patch, grid * patch),
                               mask_in_chans=sd["prompt_encoder.mask_downscaling.3.weight"].shape[0])
    except (KeyError, IndexError, StopIteration) as e:
        raise EngineError(f"not a segment_anything SAM checkpoint (no {e})", phase="phase1",
                          fix="point the manifest's sam entry at a sam_vit_*.pth file") from e
    sam = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
              pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    sam.load_state_dict(sd)
    return sam.eval()


class SamSegmenter:
    def __init__(self, path: Path, vram: VramManager):
        self.vram = vram
        sd = torch.load(path, map_location="cpu", weights_only=True)
        vram.register(NAME, sam_from_state_dict(sd))
        # the latest images' embeddings (a few MB each), reused for their boxes: in a model host the requests of
        # several images interleave between one image's vehicle box and its part boxes
        self._predictors = Recent(EMBEDDINGS_KEPT)

    def _predictor_for(self, sam, rgb: np.ndarray):
        """A predictor holding `rgb`'s embedding: the vehicle and then its parts are boxes on one image, and
        the ViT-H encoder is the expensive half of SAM."""
        from segment_anything import SamPredictor

        # moved by the VRAM manager, the embedding must follow the model
        key = Recent.key(rgb, str(next(sam.parameters()).device), id(sam))
        predictor = self._predictors.get(key)
        if predictor is None:
            predictor = SamPredictor(sam)
            predictor.set_image(np.ascontiguousarray(rgb), image_format="RGB")
        self._predictors.put(key, predictor)
        return predictor

    def masks(self, rgb: np.ndarray, boxes: np.ndarray, *, multimask: bool = True) -> np.ndarray:
        """One bool H×W mask per box (N×H×W): of SAM's candidates, the one it scores best."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, *rgb.shape[:2]), dtype=bool)
        sam = self.vram.acquire(NAME)
        half = self.vram.is_cuda and self.vram.dtype != torch.float32

        def predict():
            with torch.inference_mode(), torch.autocast("cuda", dtype=self.vram.dtype, enabled=half):
                predictor = self._predictor_for(sam, rgb)
                tb = predictor.transform.apply_boxes_torch(torch.as_tensor(boxes, device=predictor.device),
                                                           rgb.shape[:2])
                masks, scores, _ = predictor.predict_torch(point_coords=None, point_labels=None, boxes=tb,
                                                           multimask_output=multimask)
            best = scores.argmax(dim=1)
            return masks[torch.arange(len(boxes)), best].cpu().numpy()

        return self.vram.run(predict, owner=NAME)
