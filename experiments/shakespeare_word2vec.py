"""word2vec on Shakespeare: skip-gram with negative sampling (Mikolov et al. 2013a, Figure 1; 2013b, Eq. 4).

Tokens from the word tokenizer (words with their case, punctuation marks and whitespace runs),
a 5,000-token vocabulary of the train text's most frequent pieces (the rest map to <unk>), 100-dimensional vectors
(1.0M parameters in the two tables), context window 5, 5 noise words per pair from the
unigram^0.75 distribution, frequent words subsampled (word2vec's t=1e-5).
Batch 512 pairs, Adam at 2e-3, 3,000 steps. `accuracy` is the fraction of pairs whose true
context word outscores all 5 noise words.
Takes about 35 s on 2 CPU cores, most of it building the vocabulary and the validation pairs.
Measured (seed 0): validation loss 2.53 (of 4.16 = 6 ln 2 at initialisation), accuracy 31.3 %,
flat after a few hundred steps, although the vectors themselves keep improving until about step
6,000 (notebooks/word2vec.ipynb trains 10,000). CBOW, same command with --config.model.name=cbow:
validation loss 2.49, accuracy 34.5 %.

Command:
    jaxmodels train --config experiments/shakespeare_word2vec.py --workdir runs/shakespeare_skipgram

CBOW (the centre word from the average of its context) on the same data:
    jaxmodels train --config experiments/shakespeare_word2vec.py --workdir runs/shakespeare_cbow \\
        --config.model.name=cbow
The vectors are the input table: `jaxmodels.models.word2vec.word_vectors(params)`, queried by
`nearest_neighbours` and `analogy` in that module.
"""

from jaxmodels.config import base_config


def get_config():
    config = base_config()
    config.task.name = "word2vec"
    config.data.name = "shakespeare"
    config.data.tokenizer = "word"
    config.data.vocab_size = 5000
    config.data.window = 5
    config.data.num_negatives = 5
    config.data.batch_size = 512
    config.data.eval_batch_size = 2048
    config.model.name = "skipgram"
    config.model.embed_dim = 100
    config.optimizer.learning_rate = 2e-3
    config.train.num_steps = 3000
    config.train.eval_every = 500
    config.train.log_every = 100
    return config
