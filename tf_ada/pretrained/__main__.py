"""python -m tf_ada.pretrained list | export RUN_DIR NAME --data DATA_DIR"""
import sys

from tf_ada.pretrained import main

sys.exit(main())
