namespace Microsoft.ML.Dpt.Training;

/// <summary>The one way options report a bad setting: the option's name, its value and what was expected.</summary>
internal static class OptionChecks
{
    public static void Check(bool ok, string option, object? value, string expected)
    {
        if (!ok) throw new ArgumentOutOfRangeException(option, $"Option {option} is {value ?? "null"}; expected {expected}.");
    }
}
