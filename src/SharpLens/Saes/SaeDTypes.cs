using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>SAELens's dtype strings.</summary>
public static class SaeDTypes
{
    public static ScalarType Parse(string name) => name.Replace("torch.", "") switch
    {
        "float32" or "float" => ScalarType.Float32,
        "float64" or "double" => ScalarType.Float64,
        "float16" or "half" => ScalarType.Float16,
        "bfloat16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"Unknown SAE dtype '{name}'; use float32, float64, float16 or bfloat16.", "dtype"),
    };

    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32", ScalarType.Float64 => "float64",
        ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16",
        _ => throw new ArgumentException($"An SAE cannot hold {dtype} weights.", nameof(dtype)),
    };
}
