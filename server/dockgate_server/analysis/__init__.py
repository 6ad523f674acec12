"""Access analysis: who can do an action on a repository, what a principal can do, and what a
proposed change would change, each answer exact (the same as `decide` for every pair) and found
through the index rather than by deciding every pair."""

from dockgate_server.analysis.catalogue import ACCOUNT_ACTIONS, REPOSITORY_ACTIONS
from dockgate_server.analysis.finding import Access, ConditionalStatement, Finding, PrincipalType
from dockgate_server.analysis.preview import AccessChange, preview, proposed_snapshot
from dockgate_server.analysis.proposal import (
    BundleProposal,
    PolicyProposal,
    Proposal,
    ProposalError,
    proposed_fleet,
)
from dockgate_server.analysis.what import what_can
from dockgate_server.analysis.who import who_can

__all__ = [
    "ACCOUNT_ACTIONS",
    "REPOSITORY_ACTIONS",
    "Access",
    "AccessChange",
    "BundleProposal",
    "ConditionalStatement",
    "Finding",
    "PolicyProposal",
    "PrincipalType",
    "Proposal",
    "ProposalError",
    "preview",
    "proposed_fleet",
    "proposed_snapshot",
    "what_can",
    "who_can",
]
