"""Action names: which text can name an action at all, and which names ECR's actions have."""

from __future__ import annotations

import functools

from dockgate_server.policy.glob import compile_glob

__all__ = ["ECR_ACTIONS", "ECR_PREFIX", "is_action_name", "matches_ecr_action"]

ECR_PREFIX = "ecr"

ECR_ACTIONS = frozenset(
    {
        "BatchCheckLayerAvailability",
        "BatchDeleteImage",
        "BatchGetImage",
        "BatchGetRepositoryScanningConfiguration",
        "BatchImportUpstreamImage",
        "CompleteLayerUpload",
        "CreatePullThroughCacheRule",
        "CreateRepository",
        "CreateRepositoryCreationTemplate",
        "DeleteLifecyclePolicy",
        "DeletePullThroughCacheRule",
        "DeleteRegistryPolicy",
        "DeleteRepository",
        "DeleteRepositoryCreationTemplate",
        "DeleteRepositoryPolicy",
        "DeleteSigningConfiguration",
        "DeregisterPullTimeUpdateExclusion",
        "DescribeImageReplicationStatus",
        "DescribeImageScanFindings",
        "DescribeImageSigningStatus",
        "DescribeImages",
        "DescribePullThroughCacheRules",
        "DescribeRegistry",
        "DescribeRepositories",
        "DescribeRepositoryCreationTemplates",
        "GetAccountSetting",
        "GetAuthorizationToken",
        "GetDownloadUrlForLayer",
        "GetImageCopyStatus",
        "GetLifecyclePolicy",
        "GetLifecyclePolicyPreview",
        "GetRegistryPolicy",
        "GetRegistryScanningConfiguration",
        "GetRepositoryPolicy",
        "GetSigningConfiguration",
        "InitiateLayerUpload",
        "ListImages",
        "ListPullTimeUpdateExclusions",
        "ListTagsForResource",
        "PutAccountSetting",
        "PutImage",
        "PutImageScanningConfiguration",
        "PutImageTagMutability",
        "PutLifecyclePolicy",
        "PutRegistryPolicy",
        "PutRegistryScanningConfiguration",
        "PutReplicationConfiguration",
        "PutSigningConfiguration",
        "RegisterPullTimeUpdateExclusion",
        "ReplicateImage",
        "SetRepositoryPolicy",
        "StartImageScan",
        "StartLifecyclePolicyPreview",
        "TagResource",
        "UntagResource",
        "UpdateImageStorageClass",
        "UpdatePullThroughCacheRule",
        "UpdateRepositoryCreationTemplate",
        "UploadLayerPart",
        "ValidatePullThroughCacheRule",
    }
)
"""Every `ecr:` action of the Service Authorization Reference (docs/ecr-actions.json)."""

_FOLDED = tuple(sorted(name.lower() for name in ECR_ACTIONS))
"""the names as a case-folded glob compares them"""
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*?")


def is_action_name(pattern: str) -> bool:
    """Whether an action-name pattern holds only what action names and wildcards are made of.

    Any other text (a comma, a space) is an unknown action to IAM: accepted, matching nothing.
    """
    return bool(pattern) and set(pattern) <= _NAME_CHARACTERS


@functools.lru_cache(maxsize=4096)  # pure in `pattern`; validation asks it of every action name
def matches_ecr_action(pattern: str) -> bool:
    """Whether an `ecr:` name pattern covers at least one of ECR's actions, in any letter case."""
    glob = compile_glob(pattern, fold_case=True)
    return any(glob.matches(name) for name in _FOLDED)
