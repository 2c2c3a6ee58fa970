#!/usr/bin/python3
"""Tokenizer fixtures: tiny SentencePiece BPE models trained here, the tokenizer.json Hugging Face converts them to,
and the ids the sentencepiece library itself gives on sentences with whitespace runs, digits, accents, CJK, emoji
(through byte fallback) and newlines.

    apt-get install python3-sentencepiece
    /usr/bin/python3 scripts/golden/make_tokenizer_fixtures.py

Writes tests/SharpLens.Tests/Fixtures/tokenizers/<name>/ with tokenizer files and expected.json:
{"cases": [{"text", "ids" (as tokenizer(text)["input_ids"]: BOS first where add_bos_token, EOS last where add_eos_token),
"pieces" (sentencepiece's pieces, no BOS), "decoded" (sentencepiece's decode of the ids without BOS/EOS)}]}.

Folders:
  spm-llama        tokenizer.model only, Llama 2's settings: BPE, byte_fallback, add_dummy_prefix, identity normalizer,
                   remove_extra_whitespaces false, split_digits, user-defined <start_of_turn> / <end_of_turn>;
                   tokenizer_config.json: LlamaTokenizer, add_bos_token true, add_eos_token false.
  spm-gemma        tokenizer.model only, Gemma's settings: as above but no dummy prefix, "\\n\\n" user-defined too;
                   tokenizer_config.json: GemmaTokenizer, add_bos_token true, add_eos_token true.
  spm-collapse     tokenizer.model only: sentencepiece's default whitespace handling (remove_extra_whitespaces true),
                   no tokenizer_config.json (so Hugging Face's slow defaults: BOS added, no EOS).
  json-llama       tokenizer.json only: spm-llama converted as transformers' LlamaConverter does (Prepend + Replace
                   normalizer, BPE with byte_fallback and fuse_unk, merges from the vocabulary ordered by score, the
                   TemplateProcessing post-processor adding <s>), + tokenizer_config.json. The expected ids are
                   sentencepiece's (plain text has no special tokens, where the two agree).
  json-gemma       tokenizer.json only: spm-gemma converted as GemmaConverter does (Replace normalizer, no prefix).
  both-llama       tokenizer.model and tokenizer.json (spm-llama's): tokenizer.json is the one read.
  not-sentencepiece  a tokenizer.model that holds JSON, for the error.
"""
import json
import os
import random
import shutil

import sentencepiece as spm

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "SharpLens.Tests", "Fixtures", "tokenizers")
WORK = "/tmp/sharplens-tokenizer-fixtures"

WORDS = ("the quick brown fox jumps over the lazy dog naïve café résumé Ångström 東京 大阪 こんにちは 世界 "
         "hello world tokenizers merge byte fallback 12 345 6789 über straße").split()


def corpus(path):
    rng = random.Random(0)
    lines = []
    for i in range(4000):
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
        if i % 5 == 0:
            line += "  " + str(rng.randint(0, 99999))
        if i % 9 == 0:
            line = "   " + line + " \t end"
        lines.append(line)
    with open(path, "w") as f:
        f.write("\n".join(lines))


def train(name, **kw):
    prefix = os.path.join(WORK, name)
    spm.SentencePieceTrainer.train(input=os.path.join(WORK, "corpus.txt"), model_prefix=prefix, vocab_size=420,
                                   model_type="bpe", character_coverage=0.9995, pad_id=0, unk_id=3, bos_id=1, eos_id=2,
                                   byte_fallback=True, split_digits=True, minloglevel=2, **kw)
    return prefix + ".model"


def cases():
    rng = random.Random(7)
    alphabet = list("abcdefghijklmnopqrstuvwxyz ABCXYZ  \n\t0123456789.,!?-'éèçñüÅß東京大阪世界こんにちは😀🎉🦀") + \
        ["   ", "\n\n", " world", "the ", "naïve", "<start_of_turn>", "Ω", "한국어"]
    texts = ["Hello world", "  leading spaces", "trailing spaces   ", "digits 1234567890 and 3.14159",
             "accents: naïve café résumé Ångström", "CJK: 東京 大阪 世界 한국어", "emoji 😀🎉🦀 and 👩‍👩‍👧", "new\nlines\n\n and\ttabs",
             "many     spaces    here", "", " ", "\n", "a", "<start_of_turn>user\nHi there<end_of_turn>"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) for _ in range(60)]
    return texts


def convert(model, out, style, user_defined):
    """tokenizer.json as transformers' LlamaConverter (style llama) or GemmaConverter (style gemma) writes it."""
    sp = spm.SentencePieceProcessor(model_file=model)
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    merges = []
    for piece, i in vocab.items():  # every split of a piece into two pieces is a merge, ranked by the piece's score
        local = [(piece[:k], piece[k:], sp.get_score(i)) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: x[2], reverse=True)
    special = sorted({i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)} | {vocab[u] for u in user_defined})
    added = [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in special]
    replace = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    if style == "llama":
        normalizer = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, replace]}
        strip = [{"type": "Strip", "content": " ", "start": 1, "stop": 0}]
    else:
        normalizer, strip = replace, []
    decoder = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                               {"type": "ByteFallback"}, {"type": "Fuse"}] + strip}
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    post = {"type": "TemplateProcessing", "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": normalizer,
           "pre_tokenizer": None, "post_processor": post, "decoder": decoder,
           "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                     "vocab": vocab, "merges": [[l, r] for l, r, _ in merges]}}
    with open(out, "w") as f:
        json.dump(doc, f, ensure_ascii=False)


def tokenizer_config(cls, add_bos, add_eos):
    return {"tokenizer_class": cls, "add_bos_token": add_bos, "add_eos_token": add_eos, "bos_token": "<s>",
            "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "legacy": True,
            "added_tokens_decoder": {str(i): {"content": t, "special": True, "normalized": False, "lstrip": False,
                                              "rstrip": False, "single_word": False}
                                     for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>"])}}


def expected(model, texts, add_bos, add_eos, plain_only=False):
    sp = spm.SentencePieceProcessor(model_file=model)
    out = []
    for t in texts:
        if plain_only and "<" in t:
            continue  # special tokens in text: Hugging Face's legacy chunking differs from sentencepiece there
        ids = sp.encode(t)
        out.append({"text": t, "ids": ([1] if add_bos else []) + ids + ([2] if add_eos else []),
                    "pieces": sp.encode(t, out_type=str), "decoded": sp.decode(ids)})
    return {"about": "ids from the sentencepiece library (scripts/golden/make_tokenizer_fixtures.py)", "cases": out}


def folder(name, files, config, exp):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    for src, dst in files:
        shutil.copy(src, os.path.join(path, dst))
    if config is not None:
        with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, ensure_ascii=False, indent=1)
    if exp is not None:
        with open(os.path.join(path, "expected.json"), "w") as f:
            json.dump(exp, f, ensure_ascii=False, indent=1)
    print(name, sorted(os.listdir(path)))


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    corpus(os.path.join(WORK, "corpus.txt"))
    ud = ["<start_of_turn>", "<end_of_turn>"]
    llama = train("llama", add_dummy_prefix=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
                  user_defined_symbols=ud, allow_whitespace_only_pieces=True)
    gemma = train("gemma", add_dummy_prefix=False, remove_extra_whitespaces=False, normalization_rule_name="identity",
                  user_defined_symbols=ud + ["\n\n"], allow_whitespace_only_pieces=True, split_by_whitespace=False)
    collapse = train("collapse", normalization_rule_name="identity")
    texts = cases()
    convert(llama, os.path.join(WORK, "llama.json"), "llama", ud)
    convert(gemma, os.path.join(WORK, "gemma.json"), "gemma", ud + ["\n\n"])
    folder("spm-llama", [(llama, "tokenizer.model")], tokenizer_config("LlamaTokenizer", True, False), expected(llama, texts, True, False))
    folder("spm-gemma", [(gemma, "tokenizer.model")], tokenizer_config("GemmaTokenizer", True, True), expected(gemma, texts, True, True))
    folder("spm-collapse", [(collapse, "tokenizer.model")], None, expected(collapse, texts, True, False))
    folder("json-llama", [(os.path.join(WORK, "llama.json"), "tokenizer.json")], tokenizer_config("LlamaTokenizerFast", True, False),
           expected(llama, texts, True, False, plain_only=True))
    folder("json-gemma", [(os.path.join(WORK, "gemma.json"), "tokenizer.json")], {"tokenizer_class": "GemmaTokenizerFast", "bos_token": "<s>", "eos_token": "</s>"},
           expected(gemma, texts, True, False, plain_only=True))
    folder("both-llama", [(llama, "tokenizer.model"), (os.path.join(WORK, "llama.json"), "tokenizer.json")],
           tokenizer_config("LlamaTokenizerFast", True, False), expected(llama, texts, True, False, plain_only=True))
    path = os.path.join(OUT, "not-sentencepiece")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "tokenizer.model"), "w") as f:
        f.write('{"this": "is JSON, not a SentencePiece ModelProto"}\n')
