namespace Microsoft.ML.Dpt.Training.SemiSupervised;

/// <summary>How stage 1 uses the unlabeled rows.</summary>
public enum SemiSupervisedAlgorithm
{
    /// <summary>Labeled rows only: the baseline every report compares with.</summary>
    SupervisedOnly,
    /// <summary>FixMatch (Sohn et al., 2020): hard pseudo-labels from the weak view above a fixed confidence threshold train the strong view.</summary>
    FixMatch,
    /// <summary>FreeMatch (Wang et al., 2023): self-adaptive global and per-class thresholds, plus a self-adaptive fairness term.</summary>
    FreeMatch,
}
