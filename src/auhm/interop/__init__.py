"""Other tools' files: auhm's predictions written as OpenFace 2.2 writes its CSVs (``openface``,
``export``), and py-feat's CSVs read as predictions (``pyfeat``)."""
