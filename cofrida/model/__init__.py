"""The edit model: canvas + prompt -> proposed finished paintings (see `edit_model`)."""

from cofrida.model.diversity import proposal_diversity, time_proposal
from cofrida.model.edit_model import EditModel, EditModelConfig, ProposalCancelled
from cofrida.model.text_encoder import TextEmbeddings, TextEncoder, minilm_path

__all__ = [
    "EditModel",
    "EditModelConfig",
    "ProposalCancelled",
    "TextEmbeddings",
    "TextEncoder",
    "minilm_path",
    "proposal_diversity",
    "time_proposal",
]
