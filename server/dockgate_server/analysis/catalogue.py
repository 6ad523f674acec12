"""ECR's actions by what they act on: a repository, or the account (resource `*`)."""

from __future__ import annotations

from dockgate_server.policy.actions import ECR_ACTIONS

__all__ = ["ACCOUNT_ACTIONS", "REPOSITORY_ACTIONS"]

REPOSITORY_ACTIONS = tuple(
    f"ecr:{name}"
    for name in sorted(
        {
            "BatchCheckLayerAvailability",
            "BatchDeleteImage",
            "BatchGetImage",
            "BatchGetRepositoryScanningConfiguration",
            "BatchImportUpstreamImage",
            "CompleteLayerUpload",
            "CreateRepository",
            "DeleteLifecyclePolicy",
            "DeleteRepository",
            "DeleteRepositoryPolicy",
            "DescribeImageReplicationStatus",
            "DescribeImageScanFindings",
            "DescribeImageSigningStatus",
            "DescribeImages",
            "DescribeRepositories",
            "GetDownloadUrlForLayer",
            "GetImageCopyStatus",
            "GetLifecyclePolicy",
            "GetLifecyclePolicyPreview",
            "GetRepositoryPolicy",
            "InitiateLayerUpload",
            "ListImages",
            "ListTagsForResource",
            "PutImage",
            "PutImageScanningConfiguration",
            "PutImageTagMutability",
            "PutLifecyclePolicy",
            "ReplicateImage",
            "SetRepositoryPolicy",
            "StartImageScan",
            "StartLifecyclePolicyPreview",
            "TagResource",
            "UntagResource",
            "UpdateImageStorageClass",
            "UploadLayerPart",
        }
    )
)
"""the actions authorized against a repository ARN (`resources: ["repository"]` in
docs/ecr-actions.json)"""

ACCOUNT_ACTIONS = tuple(
    f"ecr:{name}"
    for name in sorted(ECR_ACTIONS - {a.removeprefix("ecr:") for a in REPOSITORY_ACTIONS})
)
"""the actions without resource-level permissions: asked about resource `*`"""
