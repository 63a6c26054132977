"""The cpu-tiny base: a randomly initialised Llama-style model and a byte-level BPE tokenizer trained on the dataset's
own text with `tokenizers`, saved as an ordinary transformers folder.

    folder = build_tiny(spec, dataset_dir, models_dir)   # $CRUCIBLE_HOME/models/tiny-<key>, reused when present

The key hashes the spec, the dataset fingerprint and the library versions, so a changed dataset gets its own folder.
The folder is built in a temporary sibling and renamed into place: a killed build never leaves a half folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from finetune.build_folder import built_once
from finetune.chat_template import IM_END, IM_START, chatml_template
from finetune.data import dataset_fingerprint, iter_texts
from finetune.recipe import TinySpec

PAD, EOS_TEXT = "<|pad|>", "<|endoftext|>"
SPECIAL_TOKENS = [PAD, EOS_TEXT, IM_START, IM_END]
ROLE_WORDS = ["system", "user", "assistant", "tool"]


def tiny_key(spec: TinySpec, data_fingerprint: str) -> str:
    material = {"spec": spec.model_dump(), "data": data_fingerprint, "tokenizers": tokenizers.__version__,
                "transformers": transformers.__version__}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]


def train_tokenizer(texts, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2 style pre-tokenisation, so '\\n' never merges into a word) with ChatML specials."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps character offsets exact, which the assistant-token mask is built from.
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(texts) + ROLE_WORDS * 2, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=IM_START, eos_token=IM_END, pad_token=PAD,
                                        unk_token=None, additional_special_tokens=[EOS_TEXT])
    tokenizer.chat_template = chatml_template()
    return tokenizer


def random_model(spec: TinySpec, tokenizer) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads, max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(spec.init_seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def build_tiny(spec: TinySpec, dataset_dir: str | Path, models_dir: str | Path, log=print) -> Path:
    """The tiny base folder for this spec and dataset, built once."""
    models_dir = Path(models_dir)
    target = models_dir / f"tiny-{tiny_key(spec, dataset_fingerprint(dataset_dir))}"
    if (target / "config.json").is_file():
        log(f"[base] tiny model cached at {target}")
        return target
    with built_once(target, marker="config.json") as tmp:
        tokenizer = train_tokenizer(iter_texts(dataset_dir, "train"), spec.vocab_size)
        model = random_model(spec, tokenizer)
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        (tmp / "tiny_spec.json").write_text(json.dumps(spec.model_dump(), indent=2) + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"[base] built tiny model ({n_params:,} parameters, vocabulary {len(tokenizer)}) at {target}")
    return target
