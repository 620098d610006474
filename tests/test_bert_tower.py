"""engine.towers.bert: the text tower's BERT in plain torch, held to transformers' BertModel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.towers.bert import BertEncoder, WordPieceTokenizer
from engine.towers.minilm import MAX_TOKENS, MiniLMTextTower, bundled_folder

TEXTS = ["This is a sound of dog.", "glass breaking", "rain " * 400, "Tür knarrt, 汉字 and an émoji 🙂", "",
         "  leading and trailing spaces  ", "UPPER case WORDS"]


def test_the_bundled_minilm_gives_transformers_vectors_and_tokens():
    from transformers import AutoModel, AutoTokenizer

    folder = str(bundled_folder())
    tok, enc = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    want = tok(TEXTS, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    got = WordPieceTokenizer(folder, MAX_TOKENS)(TEXTS)
    assert torch.equal(got["input_ids"], want["input_ids"]) and got["input_ids"].shape[1] == MAX_TOKENS
    assert torch.equal(got["attention_mask"], want["attention_mask"])
    with torch.no_grad():
        hidden = enc(**want).last_hidden_state
        mask = want["attention_mask"].unsqueeze(-1).float()
        reference = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
        vectors = MiniLMTextTower().encode_many(TEXTS, chunk_size=3)     # chunks pad to their own length
    np.testing.assert_allclose(vectors.numpy(), reference.numpy(), atol=2e-6)


def test_a_random_bert_folder_loads_with_transformers_names_and_outputs(tmp_path):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=48, max_position_embeddings=40)
    reference = BertModel(config).eval()
    reference.save_pretrained(tmp_path)            # config.json + model.safetensors
    ours = BertEncoder.from_folder(tmp_path)
    assert set(ours.state_dict()) == set(reference.state_dict()) - {"embeddings.position_ids"}
    ids = torch.randint(1, 97, (3, 17))
    mask = torch.ones_like(ids)
    mask[1, 9:], mask[2, 3:] = 0, 0
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    keep = mask.bool()                             # padded positions' states are never pooled
    torch.testing.assert_close(got[keep], want[keep], atol=1e-5, rtol=1e-5)


def test_not_a_plain_bert_is_refused():
    with pytest.raises(ValueError, match="not a plain BERT"):
        BertEncoder({"model_type": "roberta"})
    with pytest.raises(ValueError, match="not a plain BERT"):
        BertEncoder({"model_type": "bert", "position_embedding_type": "relative_key"})


def test_a_trainable_tower_passes_gradients_to_its_weights():
    tower = MiniLMTextTower(trainable=True)
    tower.train()
    tower(["a dog barking"]).sum().backward()
    grads = [p.grad for p in tower.encoder.parameters() if p.requires_grad]
    assert grads and sum(float(g.abs().sum()) for g in grads if g is not None) > 0
