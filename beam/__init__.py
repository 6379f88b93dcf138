"""The Apache Beam pipeline (flex template image); the only package that imports apache_beam."""
