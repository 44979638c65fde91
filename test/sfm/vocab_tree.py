"""Builds a small FAISS vocabulary tree (COLMAP 3.12+'s format) from the descriptors in a COLMAP database, for
loop-detection tests that cannot download COLMAP's published trees: vocab_tree.py DATABASE TREE WORDS."""

import sys

import numpy as np
import pycolmap

database, tree, words = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = pycolmap.Database.open(database)
rows = [db.read_descriptors(image.image_id).to_float().data for image in db.read_all_images()]
index = pycolmap.VisualIndex.create(128, 64)
options = pycolmap.VisualIndex.BuildOptions()
options.num_visual_words = words
options.num_threads = 2
index.build(options, pycolmap.FeatureDescriptorsFloat(pycolmap.FeatureExtractorType.SIFT, np.concatenate(rows)))
index.write(tree)
