namespace SharpLens.Fuzz;

/// <summary>What a case is fed to: which library call, and which CLI command line.</summary>
public enum FuzzTarget
{
    /// <summary>A Hugging Face model folder: HookedTransformer.FromPretrained / <c>sharplens logits --model FOLDER</c>.</summary>
    ModelFolder,
    /// <summary>A weights file given directly: <c>--model FOLDER/model.safetensors</c> (or pytorch_model.bin).</summary>
    ModelFile,
    /// <summary>A BERT folder: HookedEncoder.FromPretrained / <c>logits --model FOLDER</c>.</summary>
    EncoderFolder,
    /// <summary>A llama2.c checkpoint (with or without tokenizer.bin beside it).</summary>
    Llama2c,
    /// <summary>An SAE folder or Gemma Scope params.npz: SaeFiles.Load / <c>sae encode --sae</c>.</summary>
    Sae,
    /// <summary>A .npy of activations: NumpyFiles.LoadNpy / <c>sae encode --input</c>.</summary>
    Npy,
    /// <summary>A .npz archive: NumpyFiles.LoadNpz / <c>sae encode --sae params.npz</c>.</summary>
    Npz,
    /// <summary>Tokenizer files beside valid GPT-2 weights: ModelTokenizer / <c>logits --prompt</c>.</summary>
    Tokenizer,
    /// <summary>A WordPiece vocab.txt: BertWordPieceTokenizer / <c>logits --model FOLDER --prompt</c> with it beside a BERT's config.json and weights (no command reads a bare vocab.txt).</summary>
    WordPiece,
    /// <summary>An ONNX model: OnnxModelFile (library only: the CLI's ONNX model is the built-in MiniLM).</summary>
    Onnx,
    /// <summary>A Hugging Face cache (HF_HOME) holding the repo <c>fuzz/model</c>, offline: <c>logits --model fuzz/model</c>.</summary>
    HubCache,
    /// <summary>A circuit-tracer transcoder set (config.yaml + layer_{i} or W_enc_{i}/W_dec_{i} safetensors) for gpt2-tiny-tied: TranscoderFiles.Load + encode/decode / <c>sharplens graph</c>.</summary>
    Transcoders,
    /// <summary>A dictionary_learning (or Kissane) crosscoder folder and its X.npy: CrossCoderFiles.Load + encode / <c>sharplens diff encode</c>.</summary>
    CrossCoder,
    /// <summary>An attribution graph's graph.json: GraphJson.Parse (library only: the viewer reads it in the browser).</summary>
    GraphJson,
    /// <summary>What `sharplens train` leaves (run/ and run.checkpoints/step-N with manifests): LanguageModelFolder.Open (library only).</summary>
    Checkpoint,
}

/// <summary>
/// One generated input: files (relative path → bytes, written into a fresh folder), the target that reads them,
/// and what a correct refusal must mention besides the file (a field or tensor name), when the corruption is
/// structured and that is known.
/// </summary>
public sealed record FuzzCase(int Index, string Format, string Class, string Description, FuzzTarget Target,
    IReadOnlyDictionary<string, byte[]> Files, string MainFile, string? Mention = null)
{
    public string Id => $"{Index:D5}-{Format}-{Class}";
}

/// <summary>How one run of one case ended.</summary>
public enum Outcome
{
    /// <summary>Read without complaint (many mutations are harmless: a flipped bit in a weight).</summary>
    Accepted,
    /// <summary>Refused with a message that names the file (and the field, where one is expected); no stack trace.</summary>
    Refused,
    /// <summary>Refused, but the message names neither the file nor (where expected) the field.</summary>
    RefusedUnnamed,
    /// <summary>An exception that is not a user-facing refusal (an internal error), or a stack trace printed.</summary>
    Crash,
    /// <summary>A native abort or a signal.</summary>
    Signal,
    /// <summary>Still running after the time limit.</summary>
    Hang,
    /// <summary>Ran out of memory under the address-space limit.</summary>
    OutOfMemory,
    /// <summary>Left a partial or temporary output file, or changed the input folder.</summary>
    Leftover,
    /// <summary>A marker file that only executed code could have made exists.</summary>
    CodeExecuted,
}

public sealed record CaseResult(int Index, string Format, string Class, string Mode, Outcome Outcome, string Detail, double Seconds);
