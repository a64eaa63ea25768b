namespace Microsoft.ML.Dpt.Data;

/// <summary>The shape of one image as the networks see it: channels, height, width.</summary>
public readonly record struct ImageShape(int Channels, int Height, int Width)
{
    /// <summary>Number of values in one image.</summary>
    public int Size => Channels * Height * Width;

    /// <inheritdoc/>
    public override string ToString() => $"{Channels}x{Height}x{Width}";
}
